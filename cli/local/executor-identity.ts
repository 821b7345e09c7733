import fs from 'node:fs';
import os from 'node:os';

/**
 * Identifies the process executing a run as `host:pid:start`, where `start` is the process's start
 * time from /proc, so a reused pid is never mistaken for the original process.
 */
export function executorIdentity(pid = process.pid): string {
  return `${os.hostname()}:${pid}:${startTime(pid) ?? ''}`;
}

export function executorPid(identity: string): number | undefined {
  const pid = Number(identity.split(':')[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether the process an identity names still runs (on another host, assume it does). */
export function isExecutorAlive(identity: string): boolean {
  const [host, pidText, start] = identity.split(':');
  if (host !== os.hostname()) return true;
  const pid = Number(pidText);
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTime(pid);
  return !start || !now || now === start;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") "; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[19] === undefined) return undefined;
    // A zombie has exited already, whatever kill(0) says.
    if (fields[0] === 'Z') return 'zombie';
    return fields[19];
  } catch {
    return undefined;
  }
}
