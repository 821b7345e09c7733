import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { DstackError } from '../../shared/errors.js';
import { formatMiB } from '../../shared/resources.js';
import { table } from '../output/table.js';
import { openLocal } from '../local/local-context.js';

export function artifactsListCommand(ref: string, opts: { json?: boolean }): void {
  const ctx = openLocal();
  try {
    const view = ctx.service.resolveRunRef(ref);
    const rows = ctx.service.artifactsOfRun(view.run.name);
    if (opts.json) {
      process.stdout.write(JSON.stringify(rows.map((a) => ({ workflow: a.workflow, path: a.path, files: a.files, bytes: a.bytes })), null, 2) + '\n');
      return;
    }
    process.stdout.write(table(['WORKFLOW', 'PATH', 'FILES', 'SIZE'], rows.map((a) => [a.workflow, a.path, String(a.files), formatMiB(a.bytes / 1048576)])));
  } finally {
    ctx.close();
  }
}

/** Unpacks every artifact of a run into `output`, at the paths the jobs saved them at. */
export async function artifactsDownloadCommand(ref: string, opts: { output: string; force?: boolean }): Promise<void> {
  const ctx = openLocal();
  try {
    const view = ctx.service.resolveRunRef(ref);
    const rows = ctx.service.artifactsOfRun(view.run.name);
    const dest = path.resolve(opts.output);
    fs.mkdirSync(dest, { recursive: true });
    for (const a of rows) {
      // Without --force, files that exist already are kept, and the download says so.
      const args = ['-xf', '-', '-C', dest, '--no-same-owner', ...(opts.force ? [] : ['--keep-old-files'])];
      const tar = spawn('tar', args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? 1)));
      await pipeline(ctx.service.archives.open(a.archive), tar.stdin).catch(() => {});
      if ((await exited) !== 0) {
        const exists = /exists/i.test(stderr);
        throw new DstackError(
          exists ? 'DSTACK_ERR_ARTIFACT_EXISTS' : 'DSTACK_ERR_USAGE',
          exists
            ? `'${a.path}' already exists in ${dest}; use --force to overwrite it, or -o to download elsewhere`
            : `could not unpack '${a.path}': ${stderr.trim().split('\n')[0]}`,
        );
      }
      process.stdout.write(`${a.workflow}: ${a.path} (${a.files} files, ${formatMiB(a.bytes / 1048576)})\n`);
    }
    if (rows.length === 0) process.stdout.write(`${view.run.name} has no artifacts\n`);
  } finally {
    ctx.close();
  }
}
