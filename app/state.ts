import fs from 'node:fs';
import { ArchiveStore } from './archive-store.js';
import { LogStore } from './log-store.js';
import { RunService } from './run-service.js';
import { statePaths } from './state-paths.js';
import { Store } from './store/store.js';

export interface State {
  store: Store;
  service: RunService;
  close(): void;
}

/** Opens the store, logs and archives of a state folder, and the run service over them. */
export function openState(dir: string): State {
  const paths = statePaths(dir);
  fs.mkdirSync(dir, { recursive: true });
  const store = new Store(paths.db);
  const logs = new LogStore(paths.logs);
  const service = new RunService(store, logs, new ArchiveStore(paths.archives));
  return {
    store,
    service,
    close() {
      logs.closeAll();
      store.close();
    },
  };
}
