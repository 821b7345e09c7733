import fs from 'node:fs';
import path from 'node:path';
import { listArchive, unpack } from '../../agent/tar.js';
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
    // Without --force nothing that exists already is overwritten: look at every artifact before
    // unpacking any, so a refused download leaves the folder as it was.
    for (const a of opts.force ? [] : rows) {
      const existing = (await listArchive(ctx.service.openArchive(a.archive))).find((m) => !m.endsWith('/') && fs.existsSync(path.join(dest, m)));
      if (existing) {
        throw new DstackError('DSTACK_ERR_ARTIFACT_EXISTS', `'${existing}' (artifact '${a.path}') already exists in ${dest}; use --force to overwrite it, or -o to download elsewhere`);
      }
    }
    for (const a of rows) {
      try {
        await unpack(ctx.service.openArchive(a.archive), dest);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new DstackError('DSTACK_ERR_ARCHIVE', `could not unpack artifact '${a.path}' into ${dest}: ${message}`, { cause: err });
      }
      process.stdout.write(`${a.workflow}: ${a.path} (${a.files} files, ${formatMiB(a.bytes / 1048576)})\n`);
    }
    if (rows.length === 0) process.stdout.write(`${view.run.name} has no artifacts\n`);
  } finally {
    ctx.close();
  }
}
