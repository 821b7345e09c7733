import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { asUser } from './pty/script-process.js';
import type { RunAs } from './pty-process.js';

/**
 * Archives move as tar streams, produced and consumed by the system's tar, so a model of many
 * gigabytes never sits in memory. With `runAs`, tar runs as that user: a job's folder is its
 * user's to change, and tar reads only what that user may read, whatever links the job left.
 */
export function packStream(baseDir: string, relative: string, runAs?: RunAs): { stream: Readable; done: Promise<void> } {
  const [file, ...args] = asUser(runAs, ['tar', '-cf', '-', '-C', baseDir, '--', relative]);
  const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return { stream: child.stdout, done: finished(child, 'tar -c') };
}

/**
 * Unpacks a tar stream into `destDir`; with `keepOld`, a file that exists already is an error and
 * is kept. With `runAs`, tar runs as that user: it follows a link it finds in `destDir` (tar does)
 * only as far as that user may write.
 */
export async function unpack(archive: Readable, destDir: string, options: { keepOld?: boolean; runAs?: RunAs } = {}): Promise<void> {
  fs.mkdirSync(destDir, { recursive: true });
  // --no-same-owner: files belong to whoever runs the job; tar itself refuses members with '..'.
  const args = ['-xf', '-', '-C', destDir, '--no-same-owner', ...(options.keepOld ? ['--keep-old-files'] : [])];
  const [file, ...rest] = asUser(options.runAs, ['tar', ...args]);
  const child = spawn(file!, rest, { stdio: ['pipe', 'ignore', 'pipe'] });
  const done = finished(child, 'tar -x');
  // tar may exit once it has read the end-of-archive blocks, before the record padding after
  // them: a closed stdin then is not an error. tar's exit status says whether it all arrived.
  let readError: Error | undefined;
  archive.on('error', (err) => {
    readError = err;
    child.stdin.destroy();
  });
  child.stdin.on('error', () => {});
  archive.pipe(child.stdin);
  await done;
  if (readError) throw readError;
}

/** The member names of a tar stream, as tar lists them (folders end with `/`). */
export async function listArchive(archive: Readable): Promise<string[]> {
  const child = spawn('tar', ['-tf', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = finished(child, 'tar -t');
  child.stdin.on('error', () => {});
  archive.pipe(child.stdin);
  const names: string[] = [];
  for await (const line of readline.createInterface({ input: child.stdout, crlfDelay: Infinity })) if (line) names.push(line);
  await done;
  return names;
}

function finished(child: ReturnType<typeof spawn>, what: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} failed (${code}): ${stderr.trim()}`))));
  });
}

/**
 * Counts the files and bytes under a path (a file or a folder), without following links. Async, a
 * folder at a time, so counting a large artifact never holds up other jobs' logs and stops.
 */
export async function measure(p: string): Promise<{ files: number; bytes: number }> {
  const st = await fsp.lstat(p);
  if (!st.isDirectory()) return { files: 1, bytes: st.size };
  let files = 0;
  let bytes = 0;
  for (const entry of await fsp.readdir(p, { withFileTypes: true })) {
    const m = await measure(path.join(p, entry.name));
    files += m.files;
    bytes += m.bytes;
  }
  return { files, bytes };
}
