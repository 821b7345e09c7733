import fs from 'node:fs';
import path from 'node:path';
import { unpack } from '../../agent/tar.js';
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
      try {
        await unpack(ctx.service.archives.open(a.archive), dest, { keepOld: !opts.force });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (/exists/i.test(message)) {
          throw new DstackError('DSTACK_ERR_ARTIFACT_EXISTS', `'${a.path}' already exists in ${dest}; use --force to overwrite it, or -o to download elsewhere`);
        }
        throw new DstackError('DSTACK_ERR_USAGE', `could not unpack '${a.path}': ${message}`, { cause: err });
      }
      process.stdout.write(`${a.workflow}: ${a.path} (${a.files} files, ${formatMiB(a.bytes / 1048576)})\n`);
    }
    if (rows.length === 0) process.stdout.write(`${view.run.name} has no artifacts\n`);
  } finally {
    ctx.close();
  }
}
