import path from 'node:path';

/** Where runs, logs and archives live in a state folder: DSTACK_HOME locally, DSTACK_DATA_DIR on a server. */
export function statePaths(dir: string) {
  return {
    db: path.join(dir, 'dstack.db'),
    logs: path.join(dir, 'logs'),
    archives: path.join(dir, 'archives'),
  };
}
