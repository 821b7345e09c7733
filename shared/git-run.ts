import { execFile } from 'node:child_process';
import { gitEnv } from './git-env.js';

/** A commit's hex name, full or abbreviated: anything else is never passed to git as one. */
export function isCommitName(commit: string): boolean {
  return /^[0-9a-f]{4,64}$/i.test(commit);
}

/**
 * Runs one git command and resolves with its stdout; rejects with git's stderr as the message.
 * Plain execFile, no wrapper library: the one used before waited 50 ms more after each command
 * that prints nothing on success (`add`, `read-tree`, `cat-file -e`).
 */
export function runGit(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('git', args, { cwd: options.cwd, env: gitEnv(options.env), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(stderr.trim() || err.message)) : resolve(stdout),
    ),
  );
}
