import fs from 'node:fs';
import path from 'node:path';

/**
 * Whether `p` (which need not exist yet) stays in `folder` once links on the way are followed: what
 * a path a job named must do before this process reads or writes it for the job. Where `p` does
 * not exist, its nearest folder that does is looked at, so nothing outside is even seen to exist.
 */
export function staysInside(folder: string, p: string): boolean {
  let existing = p;
  while (!fs.existsSync(existing)) existing = path.dirname(existing);
  const rel = path.relative(fs.realpathSync(folder), fs.realpathSync(existing));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
