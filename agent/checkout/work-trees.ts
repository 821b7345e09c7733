import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DstackError } from '../../shared/errors.js';
import { isCommitName, runGit } from '../../shared/git-run.js';
import { removeTree } from '../remove-tree.js';

/** Clean trees kept per repository, beyond those lent out: enough for jobs one after another. */
const IDLE_PER_MIRROR = 2;
/** Clean trees kept in all: an agent that ran many repositories does not keep a copy of each. */
const IDLE_IN_ALL = 8;

/**
 * git's own view of a tree must not come from the agent user's config: the stat check below is
 * what tells a changed file, and an fsmonitor would have git skip looking.
 */
const GIT_CONFIG = ['-c', 'core.checkStat=default', '-c', 'core.trustctime=true', '-c', 'core.fsmonitor=false', '-c', 'core.untrackedCache=false'];

interface Tree {
  id: string;
  mirror: string;
  /** Its own git index (outside the tree): what git compares the tree's files against. */
  index: string;
  /** The commit it was last brought to. */
  commit: string;
  /** Its folder's identity while lent: a job that puts something else in its place gets nothing kept. */
  dev: number;
  ino: number;
}

/**
 * Job trees checked out of a bare mirror, kept to be checked out again. Writing a whole tree for
 * every job is what a dispatch costs on a real disk: thousands of files made, then removed, and an
 * ext4 disk slows down with each round of that (see bench/server-dispatch.ts). A tree a job is done
 * with is put back as its commit has it and kept; the next job of that repository gets it renamed
 * into its folder and brought to its own commit, which writes only the files that differ.
 * Taking a tree back is a rename out of the job's folder, at once (the job's end is not held up);
 * the rest runs after, and a checkout of that repository waits for it rather than write a tree:
 * - its folder must be the very folder lent (not a link a job put in its place), and every folder
 *   in it ours: modes put back, any `.git` removed (git never tracks one, and `git clean` leaves
 *   it: a job's `git init` would hand the next job a repository of its own making);
 * - `git clean -ffdx`: everything untracked goes, ignored files too;
 * - `git read-tree -u --reset COMMIT` puts back every tracked file the job changed, deleted,
 *   re-moded or replaced by a link: git tells such a file by its stat data against the tree's own
 *   index, ctime and inode included, which a job cannot set back.
 * Lending it again repeats the clean (nothing untracked comes along, nor steers the checkout as a
 * `.gitattributes` would) and moves it to the new commit. The tree has no `.git` (its index lives
 * beside it and git is pointed at the mirror), so a job finds no way back into the mirror. Any step
 * that fails throws the tree away: a fresh one is made.
 */
export class WorkTrees {
  /** Idle trees, oldest first. */
  private idle: Tree[] = [];
  private readonly lent = new Map<string, Tree>();
  /** Trees of each mirror on their way back to `idle` (being put back). */
  private readonly returning = new Map<string, Promise<void>[]>();
  private made = 0;

  /** `root` holds the idle trees and every tree's index; it is emptied when the agent starts. */
  constructor(private readonly root: string) {}

  /** The commit's files at `dest` (which must not exist yet): a kept tree when there is one. */
  async checkOut(mirror: string, commit: string, dest: string): Promise<void> {
    if (!isCommitName(commit)) throw new DstackError('DSTACK_ERR_CHECKOUT', `'${commit.slice(0, 80)}' is not a commit's name`);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    if (!this.idle.some((t) => t.mirror === mirror)) await this.settled(mirror);
    const at = this.idle.findLastIndex((t) => t.mirror === mirror);
    if (at >= 0) {
      const [kept] = this.idle.splice(at, 1);
      try {
        // A rename: the same disk (both are in the agent's work folder), so nothing is copied.
        await fsp.rename(this.folder(kept!), dest);
        await git(kept!, dest, ['clean', '-ffdxq']);
        await git(kept!, dest, ['read-tree', '-u', '--reset', commit]);
        this.lend(kept!, dest, commit);
        return;
      } catch {
        await this.discard(kept!, dest);
      }
    }
    const tree: Tree = { id: `${process.pid}-${++this.made}`, mirror, index: '', commit, dev: 0, ino: 0 };
    tree.index = path.join(this.root, `${tree.id}.index`);
    await fsp.mkdir(this.root, { recursive: true });
    await fsp.mkdir(dest, { recursive: true });
    try {
      await git(tree, dest, ['read-tree', '-u', '--reset', commit]);
    } catch (err) {
      // Nothing half made stays at `dest`: a second try (the commit fetched again) starts clean.
      await this.discard(tree, dest);
      throw new DstackError('DSTACK_ERR_CHECKOUT', `cannot check out ${commit}: ${(err as Error).message}`, { cause: err });
    }
    this.lend(tree, dest, commit);
  }

  /**
   * Takes back the tree at `dest` once its job is done with it: moved out of the job's folder at
   * once, then put back as its commit has it and kept for the next job of its repository (off the
   * job's way: its end is reported meanwhile), or removed (enough are kept already, or it cannot be
   * put back). `dest` is gone when this resolves. A folder this did not check out is left alone.
   */
  async checkIn(dest: string): Promise<void> {
    const tree = this.lent.get(dest);
    if (!tree) return;
    this.lent.delete(dest);
    // The slot is taken now, before any await: two trees coming back at once both count.
    const returning = this.returningOf(tree.mirror);
    if (this.idle.filter((t) => t.mirror === tree.mirror).length + returning.length >= IDLE_PER_MIRROR) {
      await this.discard(tree, dest);
      return;
    }
    const moved = this.moveOut(tree, dest);
    const back = moved.then((uid) => (uid === undefined ? this.discard(tree, dest) : this.putBack(tree, uid))).catch(() => {});
    returning.push(back);
    void back.finally(() => returning.splice(returning.indexOf(back), 1));
    // `dest` is gone once moved; when it was not, once removed.
    if ((await moved) === undefined) await back;
  }

  /** Renames the tree out of the job's folder, if it is still the folder lent; its owner's uid, or undefined. */
  private async moveOut(tree: Tree, dest: string): Promise<number | undefined> {
    const st = await fsp.lstat(dest).catch(() => undefined);
    if (!st?.isDirectory() || st.dev !== tree.dev || st.ino !== tree.ino) return undefined;
    return fsp.rename(dest, this.folder(tree)).then(
      () => st.uid,
      () => undefined,
    );
  }

  /** Trees of a mirror on their way back to `idle`. */
  private returningOf(mirror: string): Promise<void>[] {
    let list = this.returning.get(mirror);
    if (!list) this.returning.set(mirror, (list = []));
    return list;
  }

  private async putBack(tree: Tree, uid: number): Promise<void> {
    const home = this.folder(tree);
    try {
      await ownFolders(home, uid);
      await git(tree, home, ['clean', '-ffdxq']);
      await git(tree, home, ['read-tree', '-u', '--reset', tree.commit]);
    } catch {
      // Something the job left that cannot be put back: not kept.
      await this.discard(tree);
      return;
    }
    this.idle.push(tree);
    // The oldest idle tree of any repository goes past the bound for all.
    while (this.idle.length > IDLE_IN_ALL) await this.discard(this.idle.shift()!);
  }

  /** Resolves once no tree of `mirror` is on its way back (a checkout would rather wait for one than write a whole tree). */
  private async settled(mirror: string): Promise<void> {
    while (this.returningOf(mirror).length > 0) await Promise.all(this.returningOf(mirror));
  }

  private lend(tree: Tree, dest: string, commit: string): void {
    const st = fs.lstatSync(dest);
    Object.assign(tree, { commit, dev: st.dev, ino: st.ino });
    this.lent.set(dest, tree);
  }

  private folder(tree: Tree): string {
    return path.join(this.root, tree.id);
  }

  /** Removes a tree (at `at`, where it was lent, and in the pool) and its index; `rm` of a link removes the link only. */
  private async discard(tree: Tree, at?: string): Promise<void> {
    const folders = [this.folder(tree), ...(at ? [at] : [])];
    await Promise.all([...folders.map(removeForced), fsp.rm(tree.index, { force: true })]);
  }
}

/**
 * Every folder under `dir` (links are not followed) must be ours; each gets the mode a checkout
 * gives a folder back (a job may have made one unreadable or open to everyone), and any `.git`
 * in it is removed. Throws for a folder of another owner.
 */
async function ownFolders(dir: string, uid: number): Promise<void> {
  const mode = 0o777 & ~umask();
  const walk = async (folder: string): Promise<void> => {
    const st = await fsp.lstat(folder);
    if (st.uid !== uid) throw new Error(`${folder} is not the agent's`);
    if ((st.mode & 0o7777) !== mode) await fsp.chmod(folder, mode);
    for (const entry of await fsp.readdir(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.name === '.git') await removeForced(full);
      else if (entry.isDirectory()) await walk(full);
    }
  };
  await walk(dir);
}

/** `process.umask()` without changing it (Node's no-argument form is deprecated). */
function umask(): number {
  const old = process.umask(0o022);
  process.umask(old);
  return old;
}

/** Removes a folder even when a job left parts of it unreadable to its owner. */
async function removeForced(dir: string): Promise<void> {
  try {
    await removeTree(dir);
  } catch {
    await new Promise((resolve) => execFile('chmod', ['-R', 'u+rwx', '--', dir], resolve));
    await removeTree(dir).catch(() => {});
  }
}

/** git on `tree`'s index, with the mirror as its repository and `dir` as its work tree. */
async function git(tree: Tree, dir: string, args: string[]): Promise<void> {
  await runGit([...GIT_CONFIG, '--git-dir', tree.mirror, '--work-tree', dir, ...args], { cwd: dir, env: { GIT_INDEX_FILE: tree.index } });
}
