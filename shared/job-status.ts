/** Job statuses, in the order a job moves through them (see DESIGN: Concepts). */
export const JOB_STATUSES = ['submitted', 'downloading', 'running', 'uploading', 'stopping', 'done', 'failed', 'stopped', 'aborted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['done', 'failed', 'stopped', 'aborted']);

export function isFinal(status: JobStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/**
 * A run's status from its jobs: still going while any job is; otherwise the worst ending
 * (aborted, then failed, then stopped), else done.
 */
export function runStatus(jobs: readonly { status: JobStatus }[]): JobStatus {
  const live = jobs.filter((j) => !isFinal(j.status));
  if (live.length > 0) {
    for (const s of ['stopping', 'uploading', 'running', 'downloading'] as const) if (live.some((j) => j.status === s)) return s;
    return 'submitted';
  }
  for (const s of ['aborted', 'failed', 'stopped'] as const) if (jobs.some((j) => j.status === s)) return s;
  return 'done';
}
