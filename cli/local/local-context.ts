import fs from 'node:fs';
import path from 'node:path';
import { ArchiveStore } from '../../app/archive-store.js';
import { LogStore } from '../../app/log-store.js';
import { RunService } from '../../app/run-service.js';
import { Store } from '../../app/store/store.js';
import { isExecutorAlive } from './executor-identity.js';
import { dstackHome, homePaths } from './home.js';

export interface LocalContext {
  home: string;
  paths: ReturnType<typeof homePaths>;
  service: RunService;
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
  service.reconcile(isExecutorAlive);
  return {
    home,
    paths,
    service,
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
