import fs from 'node:fs';
import path from 'node:path';
import { listArchive, unpack } from '../../agent/tar.js';
import { DstackError } from '../../shared/errors.js';
import { formatMiB } from '../../shared/resources.js';
import { openClient } from '../client/open-client.js';
import { table } from '../output/table.js';

export async function artifactsListCommand(ref: string, opts: { json?: boolean }): Promise<void> {
  const client = await openClient();
  try {
    const { artifacts: rows } = await client.listArtifacts(ref);
    if (opts.json) {
      process.stdout.write(JSON.stringify(rows.map((a) => ({ workflow: a.workflow, path: a.path, files: a.files, bytes: a.bytes })), null, 2) + '\n');
      return;
    }
    process.stdout.write(table(['WORKFLOW', 'PATH', 'FILES', 'SIZE'], rows.map((a) => [a.workflow, a.path, String(a.files), formatMiB(a.bytes / 1048576)])));
  } finally {
    client.close();
  }
}

/** Unpacks every artifact of a run into `output`, at the paths the jobs saved them at. */
export async function artifactsDownloadCommand(ref: string, opts: { output: string; force?: boolean }): Promise<void> {
  const client = await openClient();
  try {
    const { run, artifacts: rows } = await client.listArtifacts(ref);
    const dest = path.resolve(opts.output);
    fs.mkdirSync(dest, { recursive: true });
    // Without --force nothing that exists already is overwritten: look at every artifact before
    // unpacking any, so a refused download leaves the folder as it was.
    for (const a of opts.force ? [] : rows) {
      const existing = (await listArchive(await client.openArtifact(run, a))).find((m) => !m.endsWith('/') && fs.existsSync(path.join(dest, m)));
      if (existing) {
        throw new DstackError('DSTACK_ERR_ARTIFACT_EXISTS', `'${existing}' (artifact '${a.path}') already exists in ${dest}; use --force to overwrite it, or -o to download elsewhere`);
      }
    }
    for (const a of rows) {
      const archive = await client.openArtifact(run, a);
      try {
        await unpack(archive, dest);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new DstackError('DSTACK_ERR_ARCHIVE', `could not unpack artifact '${a.path}' into ${dest}: ${message}`, { cause: err });
      }
      process.stdout.write(`${a.workflow}: ${a.path} (${a.files} files, ${formatMiB(a.bytes / 1048576)})\n`);
    }
    if (rows.length === 0) process.stdout.write(`${run} has no artifacts\n`);
  } finally {
    client.close();
  }
}
