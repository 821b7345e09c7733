import path from 'node:path';
import { DstackError } from '../errors.js';

/**
 * Normalises a path the workflow names relative to `base` (both POSIX, relative to the repository
 * root) and refuses any that would leave `base`: jobs, artifacts and caches stay in their folder.
 */
export function confinedPath(p: string, base: string, what: string, where: string, allowHome = false): string {
  if (allowHome && (p === '~' || p.startsWith('~/'))) {
    const rest = path.posix.normalize(p.slice(1).replace(/^\/+/, '') || '.');
    if (rest === '..' || rest.startsWith('../')) throw escapes(p, what, where, 'the home folder');
    return rest === '.' ? '~' : `~/${rest.replace(/\/+$/, '')}`;
  }
  if (path.posix.isAbsolute(p) || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('~')) {
    throw escapes(p, what, where, 'the working directory');
  }
  const inside = path.posix.normalize(p);
  if (inside === '..' || inside.startsWith('../')) throw escapes(p, what, where, 'the working directory');
  return path.posix.normalize(path.posix.join(base, inside)).replace(/(.)\/+$/, '$1');
}

function escapes(p: string, what: string, where: string, folder: string): DstackError {
  return new DstackError(
    'DSTACK_ERR_PATH_ESCAPES',
    `${where}: ${what} '${p}' escapes ${folder}; use a path inside it, such as 'output'`,
  );
}
