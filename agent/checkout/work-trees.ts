import fsp from 'node:fs/promises';
import path from 'node:path';
import { DstackError } from '../../shared/errors.js';
import { runGit } from '../../shared/git-run.js';
import { removeTree } from '../remove-tree.js';

/** Clean trees kept per repository, beyond those lent out: enough for jobs one after another. */
const IDLE_PER_MIRROR = 2;

interface Tree {
  id: string;
  mirror: string;
  /** Its own git index (outside the tree): what git compares the tree's files against. */
  index: string;
}

/**
 * Job trees checked out of a bare mirror, kept to be checked out again. Writing a whole tree for
 * every job is what a dispatch costs on a real disk: thousands of files made, then removed, and an
 * ext4 disk slows down with each round of that (see bench/server-dispatch.ts). A tree a job is done
 * with is cleaned (`git clean -ffdx`: everything the job made, ignored files too) and kept; the next
 * job of that repository gets it renamed into its folder and brought to its commit, which writes
 * only the files that differ:
 * - `git clean -ffdx` first: nothing untracked comes along (nor can it steer the checkout, as a
 *   `.gitattributes` would);
 * - `git read-tree -u --reset COMMIT` moves the tree to the commit, and puts back every tracked file
 *   the last job changed, deleted, re-moded or replaced by a link: git tells such a file by its stat
 *   data against the tree's own index, ctime and inode included, which a job cannot set back.
 * The tree has no `.git` (its index lives beside it and git is pointed at the mirror), so the job
 * finds no way back into the mirror. Any step that fails throws the tree away: a fresh one is made.
 */
export class WorkTrees {
  private readonly idle = new Map<string, Tree[]>();
  private readonly lent = new Map<string, Tree>();
  private made = 0;

  /** `root` holds the idle trees and every tree's index; it is emptied when the agent starts. */
  constructor(private readonly root: string) {}

  /** The commit's files at `dest` (which must not exist yet): a kept tree when there is one. */
  async checkOut(mirror: string, commit: string, dest: string): Promise<void> {
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    const kept = this.idle.get(mirror)?.pop();
    if (kept) {
      try {
        // A rename: the same disk (both are in the agent's work folder), so nothing is copied.
        await fsp.rename(this.folder(kept), dest);
        await git(kept, dest, ['clean', '-ffdxq']);
        await git(kept, dest, ['read-tree', '-u', '--reset', commit]);
        this.lent.set(dest, kept);
        return;
      } catch {
        await this.discard(kept, dest);
      }
    }
    const tree: Tree = { id: `${process.pid}-${++this.made}`, mirror, index: '' };
    tree.index = path.join(this.root, `${tree.id}.index`);
    await fsp.mkdir(this.root, { recursive: true });
    await fsp.mkdir(dest, { recursive: true });
    try {
      await git(tree, dest, ['read-tree', '-u', '--reset', commit]);
    } catch (err) {
      await fsp.rm(tree.index, { force: true });
      throw new DstackError('DSTACK_ERR_CHECKOUT', `cannot check out ${commit}: ${(err as Error).message}`, { cause: err });
    }
    this.lent.set(dest, tree);
  }

  /**
   * Takes back the tree at `dest` once its job is done with it: cleaned and kept for the next job
   * of its repository, or removed (enough are kept already, or it cannot be cleaned). `dest` is
   * gone afterwards. A folder this did not check out is left alone.
   */
  async checkIn(dest: string): Promise<void> {
    const tree = this.lent.get(dest);
    if (!tree) return;
    this.lent.delete(dest);
    const idle = this.idle.get(tree.mirror) ?? [];
    if (idle.length < IDLE_PER_MIRROR) {
      try {
        await git(tree, dest, ['clean', '-ffdxq']);
        await fsp.rename(dest, this.folder(tree));
        idle.push(tree);
        this.idle.set(tree.mirror, idle);
        return;
      } catch {
        // Something the job left that git cannot remove (a folder it may not write): not kept.
      }
    }
    await this.discard(tree, dest);
  }

  private folder(tree: Tree): string {
    return path.join(this.root, tree.id);
  }

  private async discard(tree: Tree, at: string): Promise<void> {
    await Promise.all([removeTree(at), removeTree(this.folder(tree)), fsp.rm(tree.index, { force: true })]);
  }
}

/** git on `tree`'s index, with the mirror as its repository and `dir` as its work tree. */
async function git(tree: Tree, dir: string, args: string[]): Promise<void> {
  await runGit(['--git-dir', tree.mirror, '--work-tree', dir, ...args], { cwd: dir, env: { GIT_INDEX_FILE: tree.index } });
}
