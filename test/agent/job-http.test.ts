import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { JobHttp } from '../../agent/job-http.js';
import { DstackError } from '../../shared/errors.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A real HTTP server on loopback that handles each request as `handle` says. */
async function serve(handle: http.RequestListener): Promise<string> {
  const server = http.createServer(handle);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function failure(p: Promise<unknown>): Promise<{ error: DstackError; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DstackError);
    return { error: err as DstackError, ms: Date.now() - t0 };
  }
  throw new Error('expected it to fail');
}

describe('JobHttp: a connection that goes quiet does not hold a job for ever', () => {
  it('ends a download that stops half way, an answer that never comes, and an upload nobody reads, once nothing moved for the idle timeout', { timeout: 30_000 }, async () => {
    const url = await serve((req, res) => {
      if (req.url!.includes('/patch')) {
        // Headers and a first piece, then silence (a half-open connection after a network change).
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(1000, 'x'));
        return;
      }
      // Neither an answer nor reading the body.
      req.pause();
    });
    const jobHttp = new JobHttp(url, 'job-1', () => 'token', 400);

    const download = jobHttp.download(jobHttp.jobPath('patch'));
    let got = 0;
    download.on('data', (d: Buffer) => (got += d.length));
    const cut = await failure(new Promise((resolve, reject) => download.on('end', resolve).on('error', reject)));
    expect(got).toBe(1000);
    expect(cut.error.message).toBe(`GET ${url}/api/jobs/job-1/patch: the download was cut off (nothing moved for 0.4 s)`);
    expect(cut.ms).toBeLessThan(3000);

    // A GET with no answer yet is tried again, as for a server restarting (4 times, 7.5 s of pauses), then fails.
    const unanswered = await failure(jobHttp.json(jobHttp.jobPath('inputs')));
    expect(unanswered.error.message).toBe(`GET ${url}/api/jobs/job-1/inputs: the server stopped answering (nothing moved for 0.4 s)`);
    expect(unanswered.ms).toBeGreaterThan(7500);
    expect(unanswered.ms).toBeLessThan(15_000);

    // More than the sockets' buffers hold, so the upload has to wait for a reader that never reads.
    const big = Readable.from((function* () {
      for (let i = 0; i < 1000; i++) yield Buffer.alloc(64 * 1024, 'y');
    })());
    const stuck = await failure(jobHttp.upload(`${jobHttp.jobPath('artifacts')}?path=out`, big));
    expect(stuck.error.message).toBe(`PUT ${url}/api/jobs/job-1/artifacts: the server stopped answering (nothing moved for 0.4 s)`);
    expect(stuck.ms).toBeLessThan(3000);
  });
});
