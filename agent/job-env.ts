import type { JobAssignment } from './job-io.js';
import type { JobPaths } from './providers/provider.js';

/** Variables of the runner's own that a job must not inherit (they point at the user's state). */
const WITHHELD = /^(DSTACK_|XDG_(CACHE|CONFIG|DATA|STATE)_HOME$|npm_|INIT_CWD$|VIRTUAL_ENV$|OLDPWD$|DOCKER_|CREDENTIALS_DIRECTORY$)/;

/** What every job gets, wherever it runs: its own HOME, the run's identity, the workflow's variables. */
function common(job: JobAssignment, paths: JobPaths, workflowEnv: Record<string, string>): Record<string, string> {
  return {
    HOME: paths.home,
    TMPDIR: `${paths.jobDir}/tmp`,
    TERM: 'xterm-256color',
    RUN_NAME: job.runName,
    JOB_ID: job.jobId,
    PYTHONUNBUFFERED: '1',
    ...workflowEnv,
  };
}

/**
 * A job's environment on this machine: the runner's PATH and locale, then what every job gets,
 * and its GPUs through CUDA_VISIBLE_DEVICES.
 */
export function hostEnvironment(job: JobAssignment, paths: JobPaths, workflowEnv: Record<string, string>, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !WITHHELD.test(k)) env[k] = v;
  env.CUDA_VISIBLE_DEVICES = job.gpus.join(',');
  return Object.assign(env, common(job, paths, workflowEnv));
}

/**
 * A job's environment in a container: nothing of the runner's (the image has its own PATH), only
 * what every job gets. GPUs are the container's own devices, numbered from 0.
 */
export function containerEnvironment(job: JobAssignment, paths: JobPaths, workflowEnv: Record<string, string>): Record<string, string> {
  return common(job, paths, workflowEnv);
}
