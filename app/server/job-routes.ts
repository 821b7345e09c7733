import { Router, type NextFunction, type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { isDstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import { TarMemberCheck } from '../../shared/tar-member-check.js';
import type { JobTokens } from '../auth/job-tokens.js';
import { JobEndpoint, type JobArchive } from '../job-endpoint.js';
import type { RunService } from '../run-service.js';
import type { StorageHealth } from '../storage-health.js';
import { jobSpec } from '../store/store.js';
import { wholeNumber } from './check-input.js';
import type { GitCredentials } from './git-credentials.js';

/** An upload's query as the agent sends it (agent/remote-job.ts), never coerced. */
const uploadQuery = z.looseObject({ path: z.string(), files: wholeNumber, bytes: wholeNumber });

declare module 'express-serve-static-core' {
  interface Request {
    endpoint?: JobEndpoint;
  }
}

/**
 * The HTTP side of a job on a remote agent: its code patch, its dependencies' artifacts and its
 * caches going in, its artifacts and caches coming out, all streamed. Each request carries the
 * job's own short-lived token (see app/auth/job-tokens.ts), good for that job only and only until
 * it ends; anything else is 401.
 */
export function jobRoutes(service: RunService, jobTokens: JobTokens, credentials?: GitCredentials, storage?: StorageHealth): Router {
  const router = Router();

  const authorise = (req: Request, res: Response, next: NextFunction) => {
    const claims = jobTokens.verify(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]);
    const job = claims?.job === req.params.id ? service.job(claims.job) : undefined;
    if (!job || isFinal(job.status) || job.agent !== claims!.agent) {
      res.status(401).json({ error: 'a valid token for this job is required: Authorization: Bearer TOKEN (it ends with the job)' });
      return;
    }
    req.endpoint = new JobEndpoint(service, job, service.view(job.run_name).run.repo);
    next();
  };

  router.get('/api/jobs/:id/patch', authorise, (req, res, next) => {
    const run = service.view(req.endpoint!.job.run_name).run;
    const patch = service.sourceOf(run)?.patch;
    if (!patch) {
      res.status(404).json({ error: `run ${run.name} has no patch` });
      return;
    }
    stream(res, service.openArchive(patch), 'application/octet-stream').catch(next);
  });

  // A token to fetch the run's code with, minted on demand (see git-credentials.ts) and never kept:
  // asked for just before the checkout, sent as a header by git, gone with the job.
  router.get('/api/jobs/:id/git-credentials', authorise, async (req, res, next) => {
    const run = service.view(req.endpoint!.job.run_name).run;
    try {
      const token = service.sourceOf(run)?.credentials ? await credentials?.forRun(run) : undefined;
      if (!token) {
        res.status(404).json({ error: `run ${run.name} needs no credentials to fetch its code` });
        return;
      }
      res.set('cache-control', 'no-store').json({ token });
    } catch (err) {
      next(err);
    }
  });

  const inputs = (endpoint: JobEndpoint): Record<string, JobArchive[]> => ({ dependencies: endpoint.dependencies(), caches: endpoint.caches() });

  router.get('/api/jobs/:id/inputs', authorise, (req, res) => {
    const id = encodeURIComponent(req.params.id as string);
    const list = inputs(req.endpoint!);
    res.json(
      Object.fromEntries(Object.entries(list).map(([kind, archives]) => [kind, archives.map((a, i) => ({ path: a.path, url: `/api/jobs/${id}/inputs/${kind}/${i}` }))])),
    );
  });

  router.get('/api/jobs/:id/inputs/:kind/:index', authorise, (req, res, next) => {
    const archive = inputs(req.endpoint!)[req.params.kind as string]?.[Number(req.params.index)];
    if (!archive) {
      res.status(404).json({ error: 'no such input' });
      return;
    }
    stream(res, req.endpoint!.open(archive.archive), 'application/x-tar').catch(next);
  });

  /** An artifact or a cache, checked member by member as it streams in: a refused archive leaves nothing. */
  const upload = (kind: 'artifacts' | 'cache') => async (req: Request, res: Response) => {
    const endpoint = req.endpoint!;
    const spec = jobSpec(endpoint.job);
    const query = uploadQuery.safeParse(req.query);
    if (!query.success) {
      res.status(400).json({ error: 'path (once), files and bytes (whole numbers) are required: ?path=PATH&files=N&bytes=N', code: 'DSTACK_ERR_USAGE' });
      return;
    }
    const { path: target, files, bytes } = query.data;
    if (!spec[kind].includes(target)) {
      res.status(400).json({ error: `'${target}' is not one of the workflow's ${kind === 'cache' ? 'cached paths' : 'artifacts'}`, code: 'DSTACK_ERR_USAGE' });
      return;
    }
    const checked = new TarMemberCheck();
    req.on('error', (err) => checked.destroy(err));
    req.pipe(checked);
    try {
      if (kind === 'cache') await endpoint.putCache(target, checked, { bytes });
      else await endpoint.putArtifact(target, checked, { files, bytes });
      res.status(204).end();
    } catch (err) {
      if (isDstackError(err)) res.status(400).json({ error: err.message, code: err.code });
      else if (storage?.failed(err)) res.status(503).json({ error: storage.error().message, code: 'DSTACK_ERR_NO_SPACE' });
      else res.status(500).json({ error: `could not store the upload: ${err instanceof Error ? err.message : String(err)}` });
      // What the client still sends is not read: close the connection once the answer is out.
      res.on('finish', () => req.socket.destroy());
    }
  };
  router.put('/api/jobs/:id/artifacts', authorise, upload('artifacts'));
  router.put('/api/jobs/:id/caches', authorise, upload('cache'));

  return router;
}

/** Streams a file out; an error after the headers are sent cuts the response, so a download is never taken as whole. */
async function stream(res: Response, source: NodeJS.ReadableStream, type: string): Promise<void> {
  res.type(type);
  try {
    await pipeline(source, res);
  } catch (err) {
    if (!res.headersSent) throw err;
    res.destroy();
  }
}
