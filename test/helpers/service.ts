import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveStore } from '../../app/archive-store.js';
import { LogStore } from '../../app/log-store.js';
import { RunService } from '../../app/run-service.js';
import { Store } from '../../app/store/store.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';

/** A run service on a real SQLite file, log store and archive store in a temporary folder, which `close` removes. */
export function openService(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-service-'))) {
  const store = new Store(path.join(dir, 'dstack.db'));
  const logs = new LogStore(path.join(dir, 'logs'));
  const service = new RunService(store, logs, new ArchiveStore(path.join(dir, 'archives')));
  return {
    dir,
    store,
    service,
    close() {
      logs.closeAll();
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A resolved bash workflow, as the loader makes it, with the fields a test cares about. */
export function workflow(name: string, extra: Partial<ResolvedWorkflow> = {}): ResolvedWorkflow {
  return {
    name,
    provider: 'bash',
    spec: { name, provider: 'bash', commands: ['true'] } as ResolvedWorkflow['spec'],
    dependsOn: [],
    workingDir: '.',
    artifacts: [],
    cache: [],
    ports: [],
    env: {},
    resources: { gpu: { count: 0 }, interruptible: false },
    position: { file: '.dstack/workflows.yaml', line: 1, col: 1 },
    ...extra,
  };
}
