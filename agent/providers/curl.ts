import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DstackError } from '../../shared/errors.js';
import type { CurlSpec } from '../../shared/workflow/schema.js';
import { staysInside } from '../stays-inside.js';
import type { Provider } from './provider.js';

const ATTEMPTS = 4;

/** `provider: curl`: downloads `url` to `output`, with progress in the log and retries. */
export const curlProvider: Provider = async (ctx) => {
  const spec = ctx.workflow.spec as CurlSpec;
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  // No code of the user's runs here, so the download happens on this machine whatever the isolation.
  const work = path.join(ctx.hostJobDir, 'work');
  const output = path.join(work, ctx.workflow.workingDir, spec.output);
  // The folders on the way are the repository's: a link committed there (`out` to /etc) would have
  // this process (root, under --run-as) write where the job may not.
  if (!staysInside(work, path.dirname(output))) {
    throw new DstackError('DSTACK_ERR_PATH_ESCAPES', `output '${spec.output}' leads out of the job's folder through a link; name a path inside it`);
  }
  const exited = (async () => {
    fs.mkdirSync(path.dirname(output), { recursive: true });
    for (let attempt = 1; ; attempt++) {
      try {
        await download(spec.url, output, controller.signal, ctx.output);
        ctx.note(`saved ${spec.output}`);
        return 0;
      } catch (err) {
        if (stoppedBy) return 130;
        const message = err instanceof Error ? err.message : String(err);
        const permanent = err instanceof HttpError && err.status >= 400 && err.status < 500 && err.status !== 429;
        if (permanent || attempt >= ATTEMPTS) {
          ctx.note(`download failed: ${message}`);
          return 1;
        }
        const wait = 500 * 2 ** (attempt - 1);
        ctx.note(`download failed (${message}); retrying in ${wait / 1000}s (${attempt}/${ATTEMPTS - 1})`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  })();
  return {
    exited,
    signal(sig) {
      stoppedBy = sig;
      controller.abort();
    },
    pause() {},
    resume() {},
  };
};

class HttpError extends Error {
  constructor(readonly status: number, statusText: string) {
    super(`HTTP ${status} ${statusText}`.trim());
  }
}

async function download(url: string, output: string, signal: AbortSignal, out: (d: Buffer) => void): Promise<void> {
  const res = await fetch(url, { signal, redirect: 'follow' });
  if (!res.ok || !res.body) throw new HttpError(res.status, res.statusText);
  const total = Number(res.headers.get('content-length')) || 0;
  let received = 0;
  let lastReport = 0;
  const report = (final: boolean) => {
    const pct = total ? Math.floor((received / total) * 100) : undefined;
    const bar = pct === undefined ? '' : `[${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ${String(pct).padStart(3)}% `;
    out(Buffer.from(`\r${bar}${(received / 1048576).toFixed(1)} MB${total ? ` of ${(total / 1048576).toFixed(1)} MB` : ''}${final ? '\r\n' : ''}`));
  };
  const progress = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      const now = Date.now();
      if (now - lastReport > 200) {
        lastReport = now;
        report(false);
      }
      cb(null, chunk);
    },
  });
  const tmp = `${output}.part`;
  // Not through a link of that name (the rename after replaces one at `output` itself).
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), progress, fs.createWriteStream('', { fd }));
  report(true);
  fs.renameSync(tmp, output);
}
