import type Docker from 'dockerode';
import { digest } from '../../app/archive-store.js';
import type { RunService } from '../../app/run-service.js';
import { jobSpec, type RunRow } from '../../app/store/store.js';
import type { Isolation } from '../../agent/job-runner.js';
import { DEFAULT_ISOLATION_IMAGE } from './config-file.js';
import { isFinal } from '../../shared/job-status.js';

/** The label value that marks containers of this DSTACK_HOME's jobs. */
export function containerOwner(home: string): string {
  return `local-${digest(home)}`;
}

/** How a run's jobs are isolated, as `dstack run` recorded it (runs without a record ran on the host). */
export function runIsolation(run: RunRow | undefined): Isolation {
  return run?.isolation ? (JSON.parse(run.isolation) as Isolation) : { mode: 'host', image: DEFAULT_ISOLATION_IMAGE };
}

/** Whether a job of a run ran (or runs) in a container. */
export function usesContainers(service: RunService, runName: string): boolean {
  const view = service.findRun(runName);
  return runIsolation(view?.run).mode === 'docker' || (view?.jobs ?? []).some((j) => jobSpec(j).provider === 'docker');
}

/**
 * Removes the containers of this machine's jobs that are no longer running — those a killed
 * `dstack` left behind. Containers of live jobs stay.
 */
export async function removeLeftoverContainers(docker: Docker, service: RunService, home: string): Promise<string[]> {
  const { removeContainers, OWNER_LABEL } = await import('../../agent/docker/run-container.js');
  return removeContainers(docker, { [OWNER_LABEL]: containerOwner(home) }, (jobId) => {
    const job = service.job(jobId);
    return job !== undefined && !isFinal(job.status);
  });
}
