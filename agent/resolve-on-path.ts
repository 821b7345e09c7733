import fs from 'node:fs';
import path from 'node:path';

/** The executable `exe` names on `PATH`, as a shell would find it; `exe` itself when none (a name with a slash is taken as it is). */
export function resolveOnPath(exe: string, PATH: string): string {
  if (exe.includes('/')) return exe;
  for (const dir of PATH.split(':')) {
    const candidate = path.join(dir || '.', exe);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return exe;
}
