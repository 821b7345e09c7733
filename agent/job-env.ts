import type { JobAssignment } from './job-io.js';

/** Variables of the runner's own that a job must not inherit (they point at the user's state). */
const WITHHELD = /^(DSTACK_|XDG_(CACHE|CONFIG|DATA|STATE)_HOME$|npm_|INIT_CWD$|VIRTUAL_ENV$|OLDPWD$)/;

/**
 * A job's environment: the runner's PATH and locale, its own HOME (so `~/.cache/pip` in `cache`
 * is the job's), the run's identity, its GPUs, and the workflow's variables last.
 */
export function jobEnvironment(job: JobAssignment, home: string, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !WITHHELD.test(k)) env[k] = v;
  Object.assign(env, {
    HOME: home,
    TERM: 'xterm-256color',
    RUN_NAME: job.runName,
    JOB_ID: job.jobId,
    PYTHONUNBUFFERED: '1',
    CUDA_VISIBLE_DEVICES: job.gpus.join(','),
  });
  return Object.assign(env, job.workflow.env);
}
