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

/**
 * A git work tree with `files` committed on `main`; `commit` adds more on the branch checked out,
 * with `date` as the commit's author and committer dates when given (as anyone pushing may set them).
 */
export function workTree(files: Record<string, string>, prefix = 'dstack-work-') {
  const dir = tempDir(prefix);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...GIT_IDENTITY } }).trim();
  git('init', '--quiet', '-b', 'main');
  writeFiles(dir, files);
  git('add', '-A');
  git('commit', '--quiet', '-m', 'first');
  return {
    dir,
    git,
    commit(more: Record<string, string>, message = 'more', date?: string): string {
      writeFiles(dir, more);
      git('add', '-A');
      execFileSync('git', ['commit', '--quiet', '-m', message], { cwd: dir, env: { ...process.env, ...GIT_IDENTITY, ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}) } });
      return git('rev-parse', 'HEAD');
    },
  };
}
