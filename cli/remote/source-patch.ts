import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { simpleGit } from 'simple-git';
import { DstackError } from '../../shared/errors.js';
import { gitEnv } from '../../shared/git-env.js';
import { runGit } from '../../shared/git-run.js';

export interface SourcePatch {
  /** The remote the agent fetches from, as `git remote get-url` gives it. */
  repoUrl: string;
  /** The newest commit of HEAD's history that the remote has. */
  commit: string;
  /** Everything since, as one binary diff: local commits, staged and unstaged changes, untracked files .gitignore does not exclude. */
  patch: Readable;
}

/**
 * What `dstack run` sends to a server: the repository's remote, the newest commit it has, and one
 * patch of the rest (seed 001: "you don't have to commit them"). The user's index and work tree
 * are left exactly as they were: the patch is made with an index of its own.
 */
export async function sourcePatch(repoDir: string): Promise<SourcePatch> {
  const { top, remote, repoUrl } = await repoRemote(repoDir);
  const commit = await newestOnRemote(repoDir, remote);
  if (!commit) throw fail(`HEAD shares no commit with '${remote}' (${repoUrl}); push your branch first (git push -u ${remote} HEAD)`);
  return { repoUrl, commit, patch: await diffSince(top, commit) };
}

/** The repository's top folder and the remote agents fetch from: the upstream's, else `origin`, else the first. */
export async function repoRemote(repoDir: string): Promise<{ top: string; remote: string; repoUrl: string }> {
  const git = simpleGit({ baseDir: repoDir });
  const top = await git.revparse(['--show-toplevel']).catch(() => undefined);
  if (!top) throw fail(`${repoDir} is not in a git repository; runs on a server need one with a remote (git init, git remote add origin URL, git push)`);
  const remotes = (await git.getRemotes()).map((r) => r.name);
  const upstream = await git.revparse(['--abbrev-ref', '--symbolic-full-name', '@{upstream}']).catch(() => '');
  const remote = upstream.split('/')[0] || (remotes.includes('origin') ? 'origin' : remotes[0]);
  if (!remote) throw fail(`the repository at ${top} has no remote; add one the agents can fetch (git remote add origin URL) and push`);
  const repoUrl = (await git.remote(['get-url', remote]))!.trim();
  return { top, remote, repoUrl: absoluteRemote(repoUrl, top) };
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

/** The newest commit of HEAD's history that some branch of `remote` (as last fetched) contains. */
async function newestOnRemote(repoDir: string, remote: string): Promise<string | undefined> {
  const git = simpleGit({ baseDir: repoDir });
  const refs = (await git.raw(['for-each-ref', '--format=%(objectname)', `refs/remotes/${remote}`])).split('\n').filter(Boolean);
  let best: { commit: string; depth: number } | undefined;
  for (const ref of new Set(refs)) {
    const base = (await git.raw(['merge-base', 'HEAD', ref]).catch(() => '')).trim();
    if (!base) continue;
    const depth = Number((await git.raw(['rev-list', '--count', base])).trim());
    if (!best || depth > best.depth) best = { commit: base, depth };
  }
  return best?.commit;
}

/**
 * `git diff --binary BASE` of the work tree as git would commit it now, through a temporary index:
 * a copy of the user's, so `git add -A` hashes only the files changed since git last looked (a
 * fresh index would have it read and hash every file of the repository on every run).
 */
async function diffSince(top: string, base: string): Promise<Readable> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-patch-'));
  const index = path.join(dir, 'index');
  const indexEnv = { GIT_INDEX_FILE: index };
  const env = gitEnv(indexEnv);
  try {
    const own = path.resolve(top, (await runGit(['rev-parse', '--git-path', 'index'], { cwd: top })).trim());
    const copied = await fsp.copyFile(own, index).then(
      // With the original's times: git takes entries as changed-maybe ("racily clean") by
      // comparing files' times with the index's, and a copy made now would hide an edit.
      async () => {
        const st = await fsp.stat(own);
        await fsp.utimes(index, st.atime, st.mtime);
        return true;
      },
      () => false, // no index yet (nothing was ever added)
    );
    if (!copied) await runGit(['read-tree', 'HEAD'], { cwd: top, env: indexEnv });
    await runGit(['add', '-A'], { cwd: top, env: indexEnv });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw fail(`cannot read the changes in ${top}: ${err instanceof Error ? err.message.trim() : String(err)}`);
  }
  const diff = spawn('git', ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', base], { cwd: top, env, stdio: ['ignore', 'pipe', 'ignore'] });
  // Read from the start (Node discards a child's unread output when it exits); remove the index after.
  const out = diff.stdout.pipe(new PassThrough());
  diff.on('close', () => fs.rmSync(dir, { recursive: true, force: true }));
  return out;
}

function fail(message: string): DstackError {
  return new DstackError('DSTACK_ERR_SOURCE', message);
}
