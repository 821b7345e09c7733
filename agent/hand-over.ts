import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { RunAs } from './pty-process.js';

const run = promisify(execFile);

/**
 * Makes a job's folder its user's (`--run-as`), just before the job starts: everything the agent
 * put in it (the code, dependencies, caches, its script) becomes that user's to change, and the
 * folder itself that user's alone. Links are not followed (`chown -R` changes a link itself).
 */
export async function handOver(dir: string, runAs: RunAs): Promise<void> {
  await run('chown', ['-R', '--no-dereference', `${runAs.uid}:${runAs.gid}`, dir]);
  fs.chmodSync(dir, 0o700);
}
