import fs from 'node:fs';
import path from 'node:path';

/**
 * The repository a command works on: the nearest folder up from `cwd` that has `.dstack/`. On its
 * own, so `dstack run` against a server finds its repository without loading the local store.
 */
export function findRepoRoot(cwd: string = process.cwd()): string {
  let dir = path.resolve(cwd);
  for (;;) {
    if (fs.existsSync(path.join(dir, '.dstack'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(cwd);
    dir = parent;
  }
}
