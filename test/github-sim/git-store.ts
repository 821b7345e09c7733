import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SimAdminError } from './sim-errors.js';

const run = promisify(execFile);

export interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  sha: string;
  size: number;
  name: string;
}

export interface PushedCommit {
  id: string;
  treeId: string;
  message: string;
  timestamp: string;
  author: { name: string; email: string };
  committer: { name: string; email: string };
  added: string[];
  removed: string[];
  modified: string[];
}

/** Git's `refs/heads/x` → sha map, so a push can be told apart from before and after. */
export type RefMap = Map<string, string>;

/** Reads and writes one bare repository with the git command line: the sim's git data of a repo. */
export class GitStore {
  constructor(readonly gitDir: string) {}

  async git(args: string[], input?: string): Promise<string> {
    const child = run('git', ['--git-dir', this.gitDir, ...args], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    if (input !== undefined) child.child.stdin!.end(input);
    return (await child).stdout;
  }

  async gitBuffer(args: string[]): Promise<Buffer> {
    return (await run('git', ['--git-dir', this.gitDir, ...args], { maxBuffer: 256 * 1024 * 1024, encoding: 'buffer' })).stdout;
  }

  /** Makes the bare repository and pushes every branch and tag of the folder `source` into it. */
  static async create(gitDir: string, source: string): Promise<GitStore> {
    await run('git', ['init', '--bare', '--quiet', gitDir]);
    const store = new GitStore(gitDir);
    // Smart HTTP pushes need this; receive.denyNonFastForwards stays off, as on GitHub.
    await store.git(['config', 'http.receivepack', 'true']);
    try {
      await run('git', ['-C', source, 'push', '--quiet', gitDir, 'refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*']);
    } catch (err) {
      throw new SimAdminError(400, `git push from ${source} failed: ${(err as Error).message.trim()}`);
    }
    return store;
  }

  async refs(): Promise<RefMap> {
    const out = await this.git(['for-each-ref', '--format=%(refname) %(objectname)']);
    return new Map(out.split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]));
  }

  async headBranch(): Promise<string | null> {
    try {
      return (await this.git(['symbolic-ref', '--short', 'HEAD'])).trim();
    } catch {
      return null;
    }
  }

  async setHead(branch: string): Promise<void> {
    await this.git(['symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
  }

  /** The commit a ref, branch, tag or sha names, or null. */
  async commit(ref: string): Promise<string | null> {
    try {
      return (await this.git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim() || null;
    } catch {
      return null;
    }
  }

  async objectType(sha: string): Promise<string | null> {
    try {
      return (await this.git(['cat-file', '-t', sha])).trim();
    } catch {
      return null;
    }
  }

  /** The entry at `path` in `commit` (a tree for the root), or null. */
  async entry(commit: string, path: string): Promise<TreeEntry | null> {
    if (path === '') return { mode: '040000', type: 'tree', sha: (await this.git(['rev-parse', `${commit}^{tree}`])).trim(), size: 0, name: '' };
    const out = await this.git(['ls-tree', '-l', '-z', commit, '--', path]);
    const entries = parseTree(out);
    return entries.find((e) => e.name === path.split('/').pop()) ?? null;
  }

  async list(commit: string, dir: string): Promise<TreeEntry[]> {
    return parseTree(await this.git(['ls-tree', '-l', '-z', commit, '--', dir === '' ? '.' : `${dir}/`]));
  }

  async blob(sha: string): Promise<Buffer> {
    return this.gitBuffer(['cat-file', 'blob', sha]);
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    try {
      await this.git(['merge-base', '--is-ancestor', ancestor, descendant]);
      return true;
    } catch {
      return false;
    }
  }

  async updateRef(ref: string, sha: string): Promise<void> {
    await this.git(['update-ref', ref, sha]);
  }

  /**
   * Commits in `before..after`, oldest first, at most 20 as GitHub sends; for a new ref, those
   * not on any of the `others` (the other branches' heads before the push).
   */
  async pushedCommits(before: string | null, after: string, others: string[] = []): Promise<PushedCommit[]> {
    const range = before ? [`${before}..${after}`] : [after, ...(others.length ? ['--not', ...others] : [])];
    const ids = (await this.git(['rev-list', '--reverse', '--max-count=2048', ...range])).split('\n').filter(Boolean).slice(-20);
    const commits: PushedCommit[] = [];
    for (const id of ids) {
      const [treeId, an, ae, at, cn, ce, ...msg] = (await this.git(['show', '-s', '--format=%T%n%an%n%ae%n%aI%n%cn%n%ce%n%B', id])).split('\n');
      const changes = (await this.git(['diff-tree', '--no-commit-id', '--root', '-r', '--name-status', id])).split('\n').filter(Boolean);
      const files = (s: string) => changes.filter((c) => c.startsWith(s)).map((c) => c.split('\t').pop()!);
      commits.push({
        id, treeId: treeId!, message: msg.join('\n').trim(), timestamp: at!, author: { name: an!, email: ae! }, committer: { name: cn!, email: ce! },
        added: files('A'), removed: files('D'), modified: files('M'),
      });
    }
    return commits;
  }
}

function parseTree(out: string): TreeEntry[] {
  return out.split('\0').filter(Boolean).map((line) => {
    const [meta, name] = line.split('\t') as [string, string];
    const [mode, type, sha, size] = meta.split(/\s+/) as [string, TreeEntry['type'], string, string];
    return { mode, type, sha, size: size === '-' ? 0 : Number(size), name: name.split('/').pop()! };
  });
}
