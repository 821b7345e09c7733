import { execFile } from 'node:child_process';
import { DstackError } from '../shared/errors.js';

/**
 * The interpreter for a Python version (`3.10` → `python3.10`, or `python3` when that is the
 * version); no version means the machine's own `python3`.
 */
export async function findPython(version: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  const wanted = version?.trim();
  const candidates = wanted ? [`python${wanted}`, 'python3', 'python'] : ['python3', 'python'];
  const seen: string[] = [];
  for (const exe of candidates) {
    const v = await versionOf(exe, env);
    if (!v) continue;
    seen.push(`${exe} (${v})`);
    // `3` takes any 3.x; `3.10.4` is satisfied by 3.10 (a patch release cannot be chosen by name).
    if (!wanted || v === wanted || v.startsWith(`${wanted}.`) || wanted.startsWith(`${v}.`)) return exe;
  }
  const has = seen.length ? `this machine has ${[...new Set(seen)].join(', ')}` : 'this machine has no python3';
  throw new DstackError(
    'DSTACK_ERR_PYTHON_MISSING',
    wanted
      ? `python ${wanted} is not installed: ${has}; install python${wanted}, or change or remove 'python:' in the workflow`
      : `python3 is not installed on this machine; install it to run python workflows`,
  );
}

/** `3.11` for an interpreter on PATH, or undefined when there is none (asked without blocking other jobs). */
function versionOf(exe: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(exe, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { env, timeout: 10_000 }, (err, stdout) =>
      resolve(err ? undefined : stdout.trim()),
    );
  });
}
