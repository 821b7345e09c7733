import os from 'node:os';
import path from 'node:path';
import { statePaths } from '../../app/state-paths.js';

/** Where local mode keeps its state: `DSTACK_HOME`, by default `~/.dstack`. */
export function dstackHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DSTACK_HOME || path.join(os.homedir(), '.dstack'));
}

export function homePaths(home: string) {
  return {
    ...statePaths(home),
    work: path.join(home, 'jobs'),
    runs: path.join(home, 'runs'),
    /** Mirrors of custom providers' repositories. */
    providers: path.join(home, 'providers'),
  };
}
