import path from 'node:path';

/** Whether `p` is `folder` or inside it, both real paths (links resolved): what a job's path must be to be read or written for it. */
export function insideFolder(folder: string, p: string): boolean {
  const rel = path.relative(folder, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
