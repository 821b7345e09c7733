import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { killLeftoverJobs } from '../../agent/leftover-jobs.js';
import { removeTree } from '../../agent/remove-tree.js';
import type { RunService } from '../../app/run-service.js';
import { openState } from '../../app/state.js';
import { isFinal } from '../../shared/job-status.js';
import { removeLeftoverContainers, usesContainers } from './containers.js';
import { isExecutorAlive } from './executor-identity.js';
import { dstackHome, homePaths } from './home.js';

export interface LocalContext {
  home: string;
  paths: ReturnType<typeof homePaths>;
  service: RunService;
  /**
   * Removes what runs of a crashed `dstack` left behind (see reconcile): their containers, job
   * folders and run snapshots.
   */
  sweep(): Promise<void>;
  close(): void;
}

/**
 * Opens local mode's state. Every command first marks runs whose process died as aborted, so a
 * crashed CLI never leaves a run "running" forever.
 */
export function openLocal(env: NodeJS.ProcessEnv = process.env): LocalContext {
  const home = dstackHome(env);
  const paths = homePaths(home);
  const state = openState(home);
  const { service } = state;
  const aborted = service.reconcile(isExecutorAlive);
  return {
    home,
    paths,
    service,
    async sweep() {
      await removeFinishedFolders(service, paths);
      if (!aborted.some((run) => usesContainers(service, run))) return;
      try {
        const { connectDocker } = await import('../../agent/docker/engine.js');
        await removeLeftoverContainers(await connectDocker(env), service, home);
      } catch {
        // No engine now: the next run with containers removes them.
      }
    },
    close: () => state.close(),
  };
}

/**
 * Job folders and run snapshots are removed by the process that runs them when they end; those of
 * a process that died stay. Remove any whose job or run has ended (never one the store does not
 * know yet: a run being submitted copies its snapshot before it is stored).
 */
async function removeFinishedFolders(service: RunService, paths: ReturnType<typeof homePaths>): Promise<void> {
  const entries = async (dir: string) => fsp.readdir(dir).catch(() => [] as string[]);
  // A `dstack` killed with SIGKILL could not kill its jobs' processes: that is done here, for the
  // jobs the store says have ended (those of a process that died were marked aborted).
  killLeftoverJobs(paths.work, (id) => {
    const job = service.job(id);
    return job !== undefined && isFinal(job.status);
  });
  for (const id of await entries(paths.work)) {
    const job = service.job(id);
    if (job && isFinal(job.status)) await removeTree(path.join(paths.work, id));
  }
  for (const name of await entries(paths.runs)) {
    const run = service.findRun(name);
    if (run && isFinal(run.status)) await removeTree(path.join(paths.runs, name));
  }
}
