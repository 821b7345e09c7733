import fs from 'node:fs';
import path from 'node:path';

/**
 * Kills what host jobs of a killed runner left running. An agent (or `dstack`) killed with SIGKILL
 * cannot end its jobs itself; most of a job dies with the hangup of its terminal, but not what
 * ignores it (a `nohup`'d trainer, a daemon in a session of its own), which would go on holding
 * GPUs the next runner offers as free. Such processes are found by what every job's processes
 * inherit (agent/job-env.ts): its `JOB_ID`, and a `TMPDIR` in its own folder (so a job of the same
 * id in another runner's folder is not touched), for the job folders found under `jobsDir` that
 * `whose` says yes to (a job of a live runner is its runner's to end). Returns the job ids hit.
 */
export function killLeftoverJobs(jobsDir: string, whose: (jobId: string) => boolean = () => true): string[] {
  let ids: string[];
  try {
    ids = fs.readdirSync(jobsDir).filter(whose);
  } catch {
    return [];
  }
  if (ids.length === 0) return [];
  const wanted = new Map(ids.map((id) => [`JOB_ID=${id}`, `TMPDIR=${path.join(jobsDir, id, 'tmp')}`]));
  const killed = new Set<string>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return []; // no /proc: nothing to tell a job's processes by, so nothing is killed
  }
  for (const pid of pids) {
    let environ: string[];
    try {
      environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    } catch {
      continue; // gone, or another user's
    }
    const match = environ.find((v) => wanted.has(v));
    if (!match || !environ.includes(wanted.get(match)!)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed.add(match.slice('JOB_ID='.length));
    } catch {
      // It ended meanwhile.
    }
  }
  return [...killed];
}
