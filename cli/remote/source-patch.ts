import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { DstackError } from '../../shared/errors.js';
import { gitEnv } from '../../shared/git-env.js';
import { runGit } from '../../shared/git-run.js';

export interface SourcePatch {
  /** The remote the agent fetches from, as `git remote get-url` gives it. */
  repoUrl: string;
  /** The newest commit of HEAD's history that the remote has. */
  commit: string;
  /**
   * Everything since, as one binary diff: local commits, staged and unstaged changes, untracked
   * files .gitignore does not exclude. Once: the staged index it is made from is removed after.
   */
  openPatch(): Readable;
  /** Removes the staged index where the patch is never opened. */
  discard(): void;
}

/**
 * What `dstack run` sends to a server: the repository's remote, the newest commit it has, and one
 * patch of the rest (seed 001: "you don't have to commit them"). The user's index and work tree
 * are left exactly as they were: the patch is made with an index of its own. The changes are
 * staged into that index while the remote's commit is looked for: neither waits for the other,
 * and each round of git commands runs side by side.
 */
export async function sourcePatch(repoDir: string): Promise<SourcePatch> {
  const repo = await repoAt(repoDir);
  const staged = stageAll(repo);
  // Handled here, so a failure while the remote is still being looked at is not an unhandled one.
  staged.catch(() => {});
  try {
    const { remote, repoUrl } = await remoteOf(repo);
    const commit = await newestOnRemote(repo.top, remote);
    if (!commit) throw fail(`HEAD shares no commit with '${remote}' (${repoUrl}); push your branch first (git push -u ${remote} HEAD)`);
    const index = await staged;
    return { repoUrl, commit, openPatch: () => diffSince(repo.top, index, commit), discard: () => index.remove() };
  } catch (err) {
    void staged.then((index) => index.remove(), () => {});
    throw err;
  }
}

interface Repo {
  top: string;
  /** The user's index file. */
  index: string;
  /** Where a refreshed copy of it is kept (see stageAll): beside it, without its suffix. */
  kept: string;
  remotes: string[];
  /** The current branch's upstream (`origin/main`), or ''. */
  upstream: string;
}

async function repoAt(repoDir: string): Promise<Repo> {
  const git = (args: string[]) => runGit(args, { cwd: repoDir });
  const [where, remotes, upstream] = await Promise.all([
    git(['rev-parse', '--show-toplevel', '--git-path', 'index', '--git-path', 'dstack-index']).catch(() => undefined),
    git(['remote']).catch(() => ''),
    git(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{upstream}']).catch(() => ''),
  ]);
  const [top, index, kept] = where?.split('\n') ?? [];
  if (!top || !index || !kept) throw fail(`${repoDir} is not in a git repository; runs on a server need one with a remote (git init, git remote add origin URL, git push)`);
  return { top, index: path.resolve(repoDir, index), kept: path.resolve(repoDir, kept), remotes: remotes.split('\n').filter(Boolean), upstream: upstream.trim() };
}

/** The repository's top folder and the remote agents fetch from: the upstream's, else `origin`, else the first. */
export async function repoRemote(repoDir: string): Promise<{ top: string; remote: string; repoUrl: string }> {
  const repo = await repoAt(repoDir);
  return { top: repo.top, ...(await remoteOf(repo)) };
}

async function remoteOf(repo: Repo): Promise<{ remote: string; repoUrl: string }> {
  const remote = repo.upstream.split('/')[0] || (repo.remotes.includes('origin') ? 'origin' : repo.remotes[0]);
  if (!remote) throw fail(`the repository at ${repo.top} has no remote; add one the agents can fetch (git remote add origin URL) and push`);
  const repoUrl = (await runGit(['remote', 'get-url', remote], { cwd: repo.top })).trim();
  return { remote, repoUrl: absoluteRemote(repoUrl, repo.top) };
}

/**
 * A remote that is a path relative to the repository (`../origin.git`) means nothing on an agent:
 * it is sent as the absolute path it names here. URLs and `host:path` remotes go as they are.
 */
function absoluteRemote(url: string, top: string): string {
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  const isScp = /^[^/]+:/.test(url) && !url.startsWith('/');
  return isUrl || isScp || path.isAbsolute(url) ? url : path.resolve(top, url);
}

/**
 * The newest commit of HEAD's history that some branch of `remote` (as last fetched) contains:
 * the merge base of HEAD and all those branches at once (git's "hypothetical merge" of them), so
 * one command however many branches the remote has.
 */
async function newestOnRemote(top: string, remote: string): Promise<string | undefined> {
  const refs = [...new Set((await runGit(['for-each-ref', '--format=%(objectname)', `refs/remotes/${remote}`], { cwd: top })).split('\n').filter(Boolean))];
  if (refs.length === 0) return undefined;
  const mergeBase = (tips: string[]) => runGit(['merge-base', 'HEAD', ...tips], { cwd: top }).then((out) => out.trim().split('\n')[0] || undefined);
  // Where that fails (exit 1: nothing in common; or a ref that names no commit, which would sink
  // the lot), or the branches are too many for one command line, each is looked at on its own.
  if (refs.length <= 10_000) {
    const base = await mergeBase(refs).catch(() => undefined);
    if (base || refs.length === 1) return base;
  }
  let best: { commit: string; depth: number } | undefined;
  for (const ref of refs) {
    const base = await mergeBase([ref]).catch(() => undefined);
    if (!base) continue;
    const depth = Number((await runGit(['rev-list', '--count', base], { cwd: top })).trim());
    if (!best || depth > best.depth) best = { commit: base, depth };
  }
  return best?.commit;
}

/** A private index with the work tree staged into it, as git would commit it now. */
interface StagedIndex {
  env: Record<string, string>;
  remove(): void;
}

/**
 * The work tree staged into a temporary index: a copy of the user's, so `git add -A` hashes only
 * the files changed since git last looked (a fresh index would have it read and hash every file of
 * the repository on every run).
 *
 * Beside it, a second copy is refreshed (`git update-index --refresh`: the same entries, with git's
 * look at each file recorded) and kept in the git folder, named for the user's index it was copied
 * from; while that one is unchanged, later runs copy the kept one instead. In an index written the
 * same second as its files (a fresh clone, a commit of files just written) every entry is "racily
 * clean", and `git add -A` would read and hash every file again on every run until something
 * refreshed the user's index, which dstack never writes.
 */
async function stageAll(repo: Repo): Promise<StagedIndex> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-patch-'));
  const index = path.join(dir, 'index');
  const indexEnv = { GIT_INDEX_FILE: index };
  const staged = { env: gitEnv(indexEnv), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
  try {
    const user = await fsp.stat(repo.index).catch(() => undefined); // none yet: nothing was ever added
    const kept = user && `${repo.kept}.${user.ino}-${user.size}-${Math.round(user.mtimeMs * 1000)}`;
    let refreshed: Promise<void> | undefined;
    if (kept && (await copyWithTimes(kept, index))) {
      // Refreshed already, and the user's index has not changed since.
    } else if (user && (await copyWithTimes(repo.index, index))) {
      refreshed = refreshAndKeep(repo, kept!);
    } else {
      await runGit(['read-tree', 'HEAD'], { cwd: repo.top, env: indexEnv });
    }
    await runGit(['add', '-A'], { cwd: repo.top, env: indexEnv });
    await refreshed;
    return staged;
  } catch (err) {
    staged.remove();
    throw fail(`cannot read the changes in ${repo.top}: ${err instanceof Error ? err.message.trim() : String(err)}`);
  }
}

/**
 * Copies an index file with its times, or says false where there is none. The times matter: git
 * takes entries as changed-maybe ("racily clean") by comparing files' times with the index's, and a
 * copy dated now would hide an edit.
 */
async function copyWithTimes(from: string, to: string): Promise<boolean> {
  try {
    await fsp.copyFile(from, to);
    const st = await fsp.stat(from);
    await fsp.utimes(to, st.atime, st.mtime);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refreshes a copy of the user's index, made beside it, and keeps it as `kept` by a rename (a run
 * beside this one never reads half of it), removing those kept for earlier states of the user's
 * index. Only an optimisation: where anything fails (the git folder cannot be written), nothing is kept.
 */
async function refreshAndKeep(repo: Repo, kept: string): Promise<void> {
  // Where git refreshes it (its lock `….tmp.lock` beside it); another run's cleanup leaves both alone.
  const tmp = `${kept}.${process.pid}.tmp`;
  try {
    if (!(await copyWithTimes(repo.index, tmp))) return;
    // Exit 1 where files changed ("needs update"): those stay as they are, for `add` to stage.
    await runGit(['update-index', '-q', '--refresh'], { cwd: repo.top, env: { GIT_INDEX_FILE: tmp } }).catch(() => {});
    await fsp.rename(tmp, kept);
    const folder = path.dirname(repo.kept);
    const prefix = `${path.basename(repo.kept)}.`;
    const stale = (await fsp.readdir(folder)).filter((name) => name.startsWith(prefix) && !name.includes('.tmp') && path.join(folder, name) !== kept);
    await Promise.all(stale.map((name) => fsp.rm(path.join(folder, name), { force: true })));
  } catch {
    await fsp.rm(tmp, { force: true }).catch(() => {});
  }
}

/** `git diff --binary BASE` of the staged index; the index is removed after. */
function diffSince(top: string, staged: StagedIndex, base: string): Readable {
  const diff = spawn('git', ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', base], { cwd: top, env: staged.env, stdio: ['ignore', 'pipe', 'ignore'] });
  // Read from the start (Node discards a child's unread output when it exits); remove the index after.
  const out = diff.stdout.pipe(new PassThrough());
  diff.on('close', () => staged.remove());
  return out;
}

function fail(message: string): DstackError {
  return new DstackError('DSTACK_ERR_SOURCE', message);
}
