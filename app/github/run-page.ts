import fs from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Router, type Response } from 'express';
import type { ServerContext } from '../server/server.js';
import { readLogTail } from './check-runs-output.js';
import { PAGE_LOG_BYTES, runPageHtml } from './run-page-html.js';
import { RunPageLinks, setRunPageLinks } from './run-page-links.js';

/**
 * The run page, `GET /runs/RUN?key=KEY`, and its artifacts' downloads: for every run of the
 * server (the CLI's too), whether or not the GitHub App is configured. The key (see RunPageLinks)
 * is what opens it; a missing or wrong one is answered 404, exactly as a run that does not exist.
 */
export function runPage(ctx: ServerContext, serverKey: Buffer, publicUrl: string | undefined, address: () => AddressInfo | string | null): Router {
  const { service } = ctx.state;
  const links = new RunPageLinks(serverKey, publicUrl, address);
  setRunPageLinks(ctx.state, links);
  const router = Router();
  const notFound = (res: Response) => {
    res.status(404).type('text/plain').send('Not Found\n');
  };
  // Relative links, so the page works whatever host name it was opened with.
  const relativeArtifact = (runName: string, jobId: string, artifactPath: string) =>
    `/runs/${encodeURIComponent(runName)}/jobs/${encodeURIComponent(jobId)}/artifact?path=${encodeURIComponent(artifactPath)}&key=${links.keyOf(runName)}`;

  router.get('/runs/:name', (req, res) => {
    const name = String(req.params.name);
    const view = links.verify(name, req.query.key) ? service.findRun(name) : undefined;
    if (!view) return notFound(res);
    res
      .set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'", 'Referrer-Policy': 'no-referrer' })
      .type('html')
      .send(
        runPageHtml({
          view,
          source: service.sourceOf(view.run),
          events: (jobId) => service.jobEvents(jobId),
          tail: (jobId) => readLogTail(service, jobId, PAGE_LOG_BYTES + 4096),
          artifacts: service.artifactsOfRun(name),
          artifactUrl: (jobId, p) => relativeArtifact(name, jobId, p),
        }),
      );
  });

  router.get('/runs/:name/jobs/:job/artifact', async (req, res, next) => {
    const name = String(req.params.name);
    if (!links.verify(name, req.query.key) || !service.findRun(name)) return notFound(res);
    const artifact = service.artifactsOfRun(name).find((a) => a.job_id === req.params.job && a.path === req.query.path);
    if (!artifact) return notFound(res);
    let opened: SizedArchive | undefined;
    try {
      opened = await openSized(service, artifact.archive);
      const { stream, bytes } = opened;
      const file = `${artifact.workflow}-${artifact.path}`.replace(/[^\w.+-]+/g, '_').replace(/^_+|_+$/g, '') || 'artifact';
      res.set({ 'Content-Type': 'application/x-tar', 'Content-Length': String(bytes), 'Content-Disposition': `attachment; filename="${file}.tar"`, 'Cache-Control': 'no-store' });
      await pipeline(stream, res);
    } catch (err) {
      opened?.stream.destroy();
      // Cut the response, so a download is never taken as whole.
      if (res.headersSent) res.destroy();
      else next(err);
    }
  });
  return router;
}

export interface SizedArchive {
  stream: fs.ReadStream;
  bytes: number;
}

/** A stored archive opened for streaming, with its length: that of the file opened, not of one that may replace it meanwhile. */
export async function openSized(service: ServerContext['state']['service'], archive: string): Promise<SizedArchive> {
  const stream = service.openArchive(archive) as fs.ReadStream;
  try {
    await once(stream, 'open');
    return { stream, bytes: fs.fstatSync((stream as unknown as { fd: number }).fd).size };
  } catch (err) {
    stream.destroy();
    throw err;
  }
}
