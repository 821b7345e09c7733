import os from 'node:os';
import path from 'node:path';

/** Where local mode keeps its state: `DSTACK_HOME`, by default `~/.dstack`. */
export function dstackHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DSTACK_HOME || path.join(os.homedir(), '.dstack'));
}

export function homePaths(home: string) {
  return {
    db: path.join(home, 'dstack.db'),
    logs: path.join(home, 'logs'),
    archives: path.join(home, 'archives'),
    work: path.join(home, 'jobs'),
    runs: path.join(home, 'runs'),
    /** Mirrors of custom providers' repositories. */
    providers: path.join(home, 'providers'),
  };
}
