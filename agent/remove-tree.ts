import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';

/**
 * Removes a folder and everything in it. `rm -rf` does it in one process, at several times the
 * speed of Node's recursive rm on a tree of thousands of files, without holding their names.
 */
export async function removeTree(dir: string): Promise<void> {
  const removed = await new Promise<boolean>((resolve) => execFile('rm', ['-rf', '--', dir], (err) => resolve(!err)));
  // Where rm cannot (a file it may not delete, no rm at all), Node's says why.
  if (!removed) await fsp.rm(dir, { recursive: true, force: true });
}
