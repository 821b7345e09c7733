import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RepoMirrors } from '../../agent/checkout/repo-mirrors.js';
import { sourcePatch } from '../../cli/remote/source-patch.js';
import { DstackError } from '../../shared/errors.js';
import { tempDir, writeFiles } from '../helpers/cli.js';
import { gitHttpServer } from '../helpers/git-http.js';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd }).toString().trim();

/** A remote (bare, as on a server) and a clone of it to work in. */
function remoteAndClone(files: Record<string, string>): { remote: string; clone: string } {
  const seed = tempDir();
  git(seed, 'init', '-q');
  writeFiles(seed, files);
  git(seed, 'add', '-A');
  git(seed, 'commit', '-qm', 'first');
  const remote = path.join(tempDir(), 'repo.git');
  git(seed, 'clone', '-q', '--bare', seed, remote);
  const clone = path.join(tempDir(), 'clone');
  git(tempDir(), 'clone', '-q', remote, clone);
  return { remote, clone };
}

/** Every file under `dir` (not .git) with its bytes and whether it is executable; links as links. */
function tree(dir: string, ignore: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === '.git' || ignore.includes(r)) continue;
      const full = path.join(dir, r);
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) out[r] = `link -> ${fs.readlinkSync(full)}`;
      else out[r] = `${fs.statSync(full).mode & 0o111 ? 'x ' : '- '}${fs.readFileSync(full).toString('base64')}`;
    }
  };
  walk('');
  return out;
}

async function code(p: Promise<unknown>): Promise<DstackError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DstackError);
    return err as DstackError;
  }
  throw new Error('expected a DstackError');
}

const BINARY = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));

describe('a run sent to agents: the patch of local work, and the checkout of it', () => {
  it('gives the job exactly the work tree, less ignored files: commits, staged, unstaged, untracked, binary, renames, deletions, modes', async () => {
    const { remote, clone } = remoteAndClone({
      '.gitignore': 'data/\n*.log\n',
      'keep.txt': 'kept\n',
      'edit.txt': 'line 1\nline 2\n',
      'staged.txt': 'old\n',
      'old-name.txt': 'moved unchanged\n',
      'gone.txt': 'to be deleted\n',
      'model.bin': BINARY.toString('latin1'),
      'run.sh': '#!/bin/sh\necho run\n',
      'plain.sh': '#!/bin/sh\n',
    });
    fs.chmodSync(path.join(clone, 'run.sh'), 0o755);
    git(clone, 'commit', '-qam', 'exec bit');
    git(clone, 'push', '-q', 'origin', 'main');
    // A local commit the remote does not have.
    writeFiles(clone, { 'local-commit.txt': 'committed here only\n' });
    git(clone, 'add', '-A');
    git(clone, 'commit', '-qm', 'local');
    // Staged, unstaged, untracked, ignored, binary, rename, delete, mode changes, no final newline.
    writeFiles(clone, { 'staged.txt': 'new\n' });
    git(clone, 'add', 'staged.txt');
    writeFiles(clone, { 'edit.txt': 'line 1\nline 2 changed\nno newline', 'untracked.py': 'print(1)\n', 'data/big.csv': 'ignored', 'debug.log': 'ignored' });
    fs.writeFileSync(path.join(clone, 'model.bin'), Buffer.concat([BINARY, BINARY.subarray(0, 100)]));
    fs.writeFileSync(path.join(clone, 'new.bin'), BINARY.subarray(500));
    git(clone, 'mv', 'old-name.txt', 'new-name.txt');
    fs.rmSync(path.join(clone, 'gone.txt'));
    fs.chmodSync(path.join(clone, 'run.sh'), 0o644);
    fs.chmodSync(path.join(clone, 'plain.sh'), 0o755);
    fs.symlinkSync('keep.txt', path.join(clone, 'link'));
    const status = git(clone, 'status', '--porcelain');

    const sent = await sourcePatch(clone);
    expect(sent.repoUrl).toBe(remote);
    expect(sent.commit).toBe(git(remote, 'rev-parse', 'main'));
    const dest = path.join(tempDir(), 'work');
    await new RepoMirrors(tempDir()).checkout({ repoUrl: sent.repoUrl, commit: sent.commit, patch: sent.openPatch(), dest });
    expect(tree(dest)).toEqual(tree(clone, ['data', 'debug.log']));
    // The user's index and work tree are as they were.
    expect(git(clone, 'status', '--porcelain')).toBe(status);
  });

  it("finds the remote's newest commit of HEAD's history among its branches, past one that names no commit", async () => {
    const { remote, clone } = remoteAndClone({ 'a.txt': 'a\n' });
    const pushed = git(clone, 'rev-parse', 'HEAD');
    writeFiles(clone, { 'b.txt': 'b\n' });
    git(clone, 'add', 'b.txt');
    git(clone, 'commit', '-qm', 'local only');
    // A stray ref to a blob among the remote's branches, as a broken fetch can leave.
    git(clone, 'update-ref', 'refs/remotes/origin/stray', git(clone, 'hash-object', '-w', 'b.txt'));
    const sent = await sourcePatch(clone);
    expect(sent.commit).toBe(pushed);
    expect(sent.repoUrl).toBe(remote);
    sent.discard();
  });

  it('sends a remote given as a path relative to the repository as the absolute path it names', async () => {
    const { remote, clone } = remoteAndClone({ 'a.txt': 'a\n' });
    git(clone, 'remote', 'set-url', 'origin', path.relative(clone, remote));
    git(clone, 'fetch', '-q', 'origin');
    expect((await sourcePatch(clone)).repoUrl).toBe(remote);
    git(clone, 'remote', 'set-url', 'origin', 'git@example.invalid:acme/repo.git');
    expect((await sourcePatch(path.join(clone))).repoUrl).toBe('git@example.invalid:acme/repo.git');
  });

  it("keeps a refreshed copy of the user's index for the next run, and starts from the user's again once it changes", async () => {
    const { remote, clone } = remoteAndClone({ '.gitignore': '*.log\n', 'a.txt': 'a\n' });
    const gitDir = path.join(clone, '.git');
    const keptFiles = () => fs.readdirSync(gitDir).filter((name) => name.startsWith('dstack-index.'));
    const index = fs.readFileSync(path.join(gitDir, 'index'));
    const sendAndCheckOut = async () => {
      const sent = await sourcePatch(clone);
      const dest = path.join(tempDir(), 'work');
      await new RepoMirrors(tempDir()).checkout({ repoUrl: remote, commit: sent.commit, patch: sent.openPatch(), dest });
      return dest;
    };

    writeFiles(clone, { 'b.txt': 'b\n' });
    expect(tree(await sendAndCheckOut())).toEqual(tree(clone));
    // One kept copy, with the user's entries; the user's own index untouched.
    expect(keptFiles()).toHaveLength(1);
    const [first] = keptFiles();
    const entries = (file?: string) => execFileSync('git', ['ls-files', '-s'], { cwd: clone, env: { ...process.env, ...(file ? { GIT_INDEX_FILE: path.join(gitDir, file) } : {}) } }).toString();
    expect(entries(first)).toBe(entries());
    expect(fs.readFileSync(path.join(gitDir, 'index')).equals(index)).toBe(true);

    // The user's index unchanged: the next run starts from the kept copy, and still sends every change.
    writeFiles(clone, { 'a.txt': 'a changed\n', 'c.txt': 'c\n' });
    expect(tree(await sendAndCheckOut())).toEqual(tree(clone));
    expect(keptFiles()).toEqual([first]);

    // A file .gitignore matches, added by force, is in the user's index only: a run started from
    // the old copy would not send it. The new state gets a copy of its own; the old one goes.
    writeFiles(clone, { 'forced.log': 'tracked though ignored\n' });
    git(clone, 'add', '-f', 'forced.log');
    const dest = await sendAndCheckOut();
    expect(fs.readFileSync(path.join(dest, 'forced.log'), 'utf8')).toBe('tracked though ignored\n');
    expect(tree(dest)).toEqual(tree(clone));
    expect(keptFiles()).toHaveLength(1);
    expect(keptFiles()).not.toEqual([first]);
    expect(entries(keptFiles()[0])).toBe(entries());
  });

  it('clones a mirror once, fetches only for a commit it lacks, and never needs the remote for one it has', async () => {
    const { remote, clone } = remoteAndClone({ 'a.txt': 'one\n' });
    const mirrors = new RepoMirrors(tempDir());
    const first = git(clone, 'rev-parse', 'HEAD');
    await mirrors.checkout({ repoUrl: remote, commit: first, dest: path.join(tempDir(), 'w') });
    writeFiles(clone, { 'a.txt': 'two\n' });
    git(clone, 'commit', '-qam', 'two');
    git(clone, 'push', '-q', 'origin', 'main');
    const second = git(clone, 'rev-parse', 'HEAD');
    const dest = path.join(tempDir(), 'w');
    await mirrors.checkout({ repoUrl: remote, commit: second, dest });
    expect(fs.readFileSync(path.join(dest, 'a.txt'), 'utf8')).toBe('two\n');
    fs.renameSync(remote, `${remote}.away`);
    const again = path.join(tempDir(), 'w');
    await mirrors.checkout({ repoUrl: remote, commit: first, dest: again });
    expect(fs.readFileSync(path.join(again, 'a.txt'), 'utf8')).toBe('one\n');
    // Two checkouts at once, of different commits, of one mirror.
    const [x, y] = [path.join(tempDir(), 'x'), path.join(tempDir(), 'y')];
    await Promise.all([mirrors.checkout({ repoUrl: remote, commit: first, dest: x }), mirrors.checkout({ repoUrl: remote, commit: second, dest: y })]);
    expect([fs.readFileSync(path.join(x, 'a.txt'), 'utf8'), fs.readFileSync(path.join(y, 'a.txt'), 'utf8')]).toEqual(['one\n', 'two\n']);
  });

  it("fails a patch that does not apply with git's message, changing nothing, and keeps the mirror good", async () => {
    const { remote, clone } = remoteAndClone({ 'a.txt': 'one\n', 'b.txt': 'bee\n' });
    const commit = git(clone, 'rev-parse', 'HEAD');
    const mirrors = new RepoMirrors(tempDir());
    const bad = 'diff --git a/b.txt b/b.txt\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-not what is there\n+x\n';
    const dest = path.join(tempDir(), 'w');
    const e = await code(mirrors.checkout({ repoUrl: remote, commit, patch: Readable.from([bad]), dest }));
    expect(e.code).toBe('DSTACK_ERR_PATCH');
    expect(e.message).toMatch(/^the run's changes do not apply to its commit: error: patch failed: b\.txt:1; error: b\.txt: patch does not apply$/);
    expect(fs.readFileSync(path.join(dest, 'b.txt'), 'utf8')).toBe('bee\n');
    const next = path.join(tempDir(), 'w');
    await mirrors.checkout({ repoUrl: remote, commit, dest: next });
    expect(fs.readFileSync(path.join(next, 'a.txt'), 'utf8')).toBe('one\n');
    const missing = await code(mirrors.checkout({ repoUrl: remote, commit: 'f'.repeat(40), dest: path.join(tempDir(), 'w') }));
    expect(missing.message).toBe(`commit ${'f'.repeat(40)} is not in ${remote}: push it, then run again`);
  });

  it('fetches over HTTP with a token sent as a header, and never shows the token', async () => {
    const { remote, clone } = remoteAndClone({ 'a.txt': 'over http\n' });
    const server = await gitHttpServer(path.dirname(remote), 's3cret-token');
    try {
      const repoUrl = `${server.url}/${path.basename(remote)}`;
      const commit = git(clone, 'rev-parse', 'HEAD');
      const denied = await code(new RepoMirrors(tempDir()).checkout({ repoUrl, commit, token: 'wrong-token', dest: path.join(tempDir(), 'w') }));
      expect(denied.code).toBe('DSTACK_ERR_CHECKOUT');
      expect(denied.message).toMatch(new RegExp(`^cannot fetch ${repoUrl}: `));
      expect(denied.message).not.toContain('wrong-token');
      const work = tempDir();
      const dest = path.join(tempDir(), 'w');
      await new RepoMirrors(work).checkout({ repoUrl, commit, token: 's3cret-token', dest });
      expect(fs.readFileSync(path.join(dest, 'a.txt'), 'utf8')).toBe('over http\n');
      // The token is in no file of the agent's work folder (the mirror's config included).
      const found = spawnSync('grep', ['-rl', '--binary-files=text', 's3cret-token', work], { encoding: 'utf8' });
      expect(found.stdout).toBe('');
      expect(found.status).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('sends the work tree as a commit of everything would be: a file taken out of the index and ignored is not sent', async () => {
    const { remote, clone } = remoteAndClone({ '.gitignore': '', 'secrets.env': 'TOKEN=x\n', 'a.txt': 'a\n' });
    git(clone, 'rm', '-q', '--cached', 'secrets.env');
    fs.writeFileSync(path.join(clone, '.gitignore'), 'secrets.env\n');
    // The user's index is reused (so unchanged files are not hashed again), and left as it was.
    const before = fs.readFileSync(path.join(clone, '.git', 'index'));
    const sent = await sourcePatch(clone);
    const dest = path.join(tempDir(), 'work');
    await new RepoMirrors(tempDir()).checkout({ repoUrl: remote, commit: sent.commit, patch: sent.openPatch(), dest });
    expect(tree(dest)).toEqual(tree(clone, ['secrets.env']));
    expect(fs.readFileSync(path.join(clone, '.git', 'index')).equals(before)).toBe(true);
  });

  it('keeps a tree a job is done with and checks the next job out into it: exactly the commit, only changed files written', async () => {
    const { remote, clone } = remoteAndClone({
      '.gitignore': 'data/\n',
      'same.txt': 'unchanged across commits\n',
      'edited-by-job.txt': 'pristine\n',
      'deleted-by-job.txt': 'pristine\n',
      'moded-by-job.sh': '#!/bin/sh\n',
      'linked-by-job.txt': 'pristine\n',
      'changes.txt': 'one\n',
      'removed-next.txt': 'only in the first commit\n',
    });
    const first = git(clone, 'rev-parse', 'HEAD');
    writeFiles(clone, { 'changes.txt': 'two\n', 'added-next.txt': 'new\n' });
    fs.rmSync(path.join(clone, 'removed-next.txt'));
    git(clone, 'add', '-A');
    git(clone, 'commit', '-qm', 'second');
    git(clone, 'push', '-q', 'origin', 'main');
    const second = git(clone, 'rev-parse', 'HEAD');
    // What a fresh checkout of the second commit gives, for comparison.
    const fresh = path.join(tempDir(), 'fresh');
    await new RepoMirrors(tempDir()).checkout({ repoUrl: remote, commit: second, dest: fresh });

    const work = tempDir();
    const mirrors = new RepoMirrors(work);
    const jobDir = tempDir();
    const a = path.join(jobDir, 'a');
    await mirrors.checkout({ repoUrl: remote, commit: first, dest: a });
    // The job changes the tree every way it can: edits (with the old mtime put back), deletes, modes,
    // links, untracked, ignored, a nested repository.
    const edited = path.join(a, 'edited-by-job.txt');
    const { atime, mtime } = fs.statSync(edited);
    fs.writeFileSync(edited, 'tampered\n');
    fs.utimesSync(edited, atime, mtime);
    fs.rmSync(path.join(a, 'deleted-by-job.txt'));
    fs.chmodSync(path.join(a, 'moded-by-job.sh'), 0o755);
    fs.rmSync(path.join(a, 'linked-by-job.txt'));
    fs.symlinkSync('/etc/passwd', path.join(a, 'linked-by-job.txt'));
    writeFiles(a, { 'outputs/model.bin': 'weights', 'data/big.csv': 'ignored', 'nested/x': 'x' });
    git(path.join(a, 'nested'), 'init', '-q');
    const sameInode = fs.statSync(path.join(a, 'same.txt')).ino;
    await mirrors.release(a);
    expect(fs.existsSync(a)).toBe(false);

    const b = path.join(jobDir, 'b');
    await mirrors.checkout({ repoUrl: remote, commit: second, dest: b });
    expect(tree(b)).toEqual(tree(fresh));
    // The same tree, moved: a file the commits share was not written again.
    expect(fs.statSync(path.join(b, 'same.txt')).ino).toBe(sameInode);
    await mirrors.release(b);

    // Three at once need three trees; two are kept afterwards (they come back at once, too), the third removed.
    const many = ['x', 'y', 'z'].map((n) => path.join(jobDir, n));
    await Promise.all(many.map((dest) => mirrors.checkout({ repoUrl: remote, commit: first, dest })));
    await Promise.all(many.map((dest) => mirrors.release(dest)));
    expect(fs.readdirSync(path.join(work, 'trees')).filter((f) => !f.endsWith('.index'))).toHaveLength(2);
    expect(fs.readdirSync(path.join(work, 'trees')).filter((f) => f.endsWith('.index'))).toHaveLength(2);
    // A folder the mirrors did not check out is not theirs to take.
    const other = tempDir();
    await mirrors.release(other);
    expect(fs.existsSync(other)).toBe(true);
  });

  it("hands the next job nothing of a job that made repositories, changed folders' modes, or put a link in place of its tree", async () => {
    const { remote, clone } = remoteAndClone({ 'src/a.py': 'a\n', 'data/keep.txt': 'k\n', 'top.txt': 't\n' });
    const commit = git(clone, 'rev-parse', 'HEAD');
    const fresh = path.join(tempDir(), 'fresh');
    await new RepoMirrors(tempDir()).checkout({ repoUrl: remote, commit, dest: fresh });
    const modes = (dir: string) => ['.', 'src', 'data'].map((d) => (fs.statSync(path.join(dir, d)).mode & 0o7777).toString(8));
    const work = tempDir();
    const mirrors = new RepoMirrors(work);
    const jobDir = tempDir();

    const a = path.join(jobDir, 'a');
    await mirrors.checkout({ repoUrl: remote, commit, dest: a });
    // `git clean` never removes a `.git`: a job's `git init`, at the top or in a tracked folder.
    git(a, 'init', '-q');
    git(path.join(a, 'src'), 'init', '-q');
    fs.writeFileSync(path.join(a, 'src', '.git', 'config'), '[core]\n\tfsmonitor = touch /tmp/pwned\n');
    fs.chmodSync(path.join(a, 'src'), 0o777);
    fs.chmodSync(path.join(a, 'data'), 0o500);
    fs.chmodSync(a, 0o700);
    await mirrors.release(a);
    const b = path.join(jobDir, 'b');
    await mirrors.checkout({ repoUrl: remote, commit, dest: b });
    expect(fs.existsSync(path.join(b, '.git'))).toBe(false);
    expect(fs.existsSync(path.join(b, 'src', '.git'))).toBe(false);
    expect(tree(b)).toEqual(tree(fresh));
    expect(modes(b)).toEqual(modes(fresh));

    // The job puts a link to a folder of the agent's in place of its tree: nothing there is
    // cleaned or kept, and the next job gets a tree of its own.
    const outside = tempDir();
    fs.writeFileSync(path.join(outside, 'precious.txt'), 'mine\n');
    fs.rmSync(b, { recursive: true, force: true });
    fs.symlinkSync(outside, b);
    await mirrors.release(b);
    expect(fs.readdirSync(outside)).toEqual(['precious.txt']);
    expect(fs.existsSync(b)).toBe(false);
    const c = path.join(jobDir, 'c');
    await mirrors.checkout({ repoUrl: remote, commit, dest: c });
    expect(fs.lstatSync(c).isSymbolicLink()).toBe(false);
    expect(tree(c)).toEqual(tree(fresh));
    expect(fs.readdirSync(outside)).toEqual(['precious.txt']);
  });

  it('says what to do when the folder cannot be sent: not git, no remote, nothing pushed', async () => {
    expect((await code(sourcePatch(tempDir()))).message).toMatch(/is not in a git repository; runs on a server need one with a remote/);
    const alone = tempDir();
    git(alone, 'init', '-q');
    writeFiles(alone, { a: 'x' });
    git(alone, 'add', '-A');
    git(alone, 'commit', '-qm', 'x');
    expect((await code(sourcePatch(alone))).message).toBe(`the repository at ${alone} has no remote; add one the agents can fetch (git remote add origin URL) and push`);
    const empty = path.join(tempDir(), 'empty.git');
    git(tempDir(), 'init', '-q', '--bare', empty);
    git(alone, 'remote', 'add', 'origin', empty);
    expect((await code(sourcePatch(alone))).message).toBe(`HEAD shares no commit with 'origin' (${empty}); push your branch first (git push -u origin HEAD)`);
  });
});
