import fs from 'node:fs';
import path from 'node:path';
import { ArchiveStore } from '../../app/archive-store.js';
import { LogStore } from '../../app/log-store.js';
import { RunService } from '../../app/run-service.js';
import { Store } from '../../app/store/store.js';
import { removeLeftoverContainers, usesContainers } from './containers.js';
import { isExecutorAlive } from './executor-identity.js';
import { dstackHome, homePaths } from './home.js';

export interface LocalContext {
  home: string;
  paths: ReturnType<typeof homePaths>;
  service: RunService;
  /** Removes containers that jobs aborted by a crashed `dstack` left running (see reconcile). */
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
  fs.mkdirSync(home, { recursive: true });
  const store = new Store(paths.db);
  const logs = new LogStore(paths.logs);
  const service = new RunService(store, logs, new ArchiveStore(paths.archives));
  const aborted = service.reconcile(isExecutorAlive);
  return {
    home,
    paths,
    service,
    async sweep() {
      if (!aborted.some((run) => usesContainers(service, run))) return;
      try {
        const { connectDocker } = await import('../../agent/docker/engine.js');
        await removeLeftoverContainers(await connectDocker(env), service, home);
      } catch {
        // No engine now: the next run with containers removes them.
      }
    },
    close() {
      logs.closeAll();
      store.close();
    },
  };
}

/** The repository a command works on: the nearest folder up from `cwd` that has `.dstack/`. */
export function findRepoRoot(cwd: string = process.cwd()): string {
  let dir = path.resolve(cwd);
  for (;;) {
    if (fs.existsSync(path.join(dir, '.dstack'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(cwd);
    dir = parent;
  }
}
