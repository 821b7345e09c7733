import { execFileSync } from 'node:child_process';
import { tempDir, writeFiles } from './cli.js';

const GIT_IDENTITY = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };

/** A bare repository with one commit of `files`, as a team's remote would be: its path is the run's repoUrl. */
export function bareRepo(files: Record<string, string>): { repoUrl: string; commit: string; work: string } {
  const work = tempDir('dstack-work-');
  const repoUrl = tempDir('dstack-bare-');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', env: { ...process.env, ...GIT_IDENTITY } }).trim();
  execFileSync('git', ['init', '--bare', '--quiet', repoUrl]);
  git('init', '--quiet', '-b', 'main');
  writeFiles(work, files);
  git('add', '-A');
  git('commit', '--quiet', '-m', 'first');
  git('push', '--quiet', repoUrl, 'main');
  return { repoUrl, commit: git('rev-parse', 'HEAD'), work };
}
