import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** A provider file at the commit a ref resolved to. */
export interface ProviderSource {
  /** The repository as shown to people (credentials in a URL are left out). */
  repo: string;
  name: string;
  ref?: string;
  commit: string;
  /** `providers/NAME.yaml` at that commit, and what to call it in messages. */
  text: string;
  label: string;
}

/** Thrown with git's own message; the caller adds where the workflow names the repository. */
export class ProviderFetchError extends Error {}

/**
 * Provider repositories, fetched with git into bare mirrors under a cache folder (one per URL). A
 * tag or commit once fetched is used as it is; a branch (or no ref: the default branch) is
 * fetched again on each use, so it always means its newest commit.
 */
export class ProviderRepos {
  constructor(private readonly cacheDir: string) {}

  /** `providers/NAME.yaml` of `repo` at `ref`; `repo` may be a URL or a path (relative to `baseDir`). */
  async get(repo: string, name: string, ref: string | undefined, baseDir: string): Promise<ProviderSource> {
    const url = isUrl(repo) ? repo : path.resolve(baseDir, repo);
    const mirror = path.join(this.cacheDir, `${crypto.createHash('sha256').update(url).digest('hex').slice(0, 16)}.git`);
    const shown = displayUrl(url);
    if (!fs.existsSync(mirror)) await this.clone(url, mirror);
    else if (await this.needsFetch(mirror, ref)) await this.fetch(mirror);
    const commit = await this.commitOf(mirror, ref);
    if (!commit) {
      throw new ProviderFetchError(`${shown} has no branch, tag or commit '${ref}'`);
    }
    const file = `providers/${name}.yaml`;
    const text = await git(mirror, ['show', `${commit}:${file}`]).catch(() => undefined);
    if (text === undefined) {
      const listed = (await git(mirror, ['ls-tree', '--name-only', `${commit}:providers`]).catch(() => ''))
        .split('\n')
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => f.replace(/\.ya?ml$/, ''));
      throw new ProviderFetchError(
        `${shown} has no ${file} at ${ref ?? 'its default branch'} (${commit.slice(0, 7)}); ` +
          (listed.length > 0 ? `providers there: ${listed.join(', ')}` : 'it has no providers/ folder'),
      );
    }
    return { repo: shown, name, ...(ref ? { ref } : {}), commit, text, label: `${shown}@${commit.slice(0, 7)}:${file}` };
  }

  private async clone(url: string, mirror: string): Promise<void> {
    await fsp.mkdir(this.cacheDir, { recursive: true });
    // Cloned beside and renamed into place, so another dstack never sees half a mirror.
    const tmp = `${mirror}.${process.pid}.tmp`;
    await fsp.rm(tmp, { recursive: true, force: true });
    try {
      await git(this.cacheDir, ['clone', '--bare', '--quiet', '--', url, tmp]);
      await fsp.rename(tmp, mirror).catch(async (err) => {
        if (!fs.existsSync(mirror)) throw err;
      });
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  private fetch(mirror: string): Promise<string> {
    return git(mirror, ['fetch', '--quiet', '--prune', '--force', 'origin', '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*']);
  }

  /** Whether `ref` may have moved: a branch, the default branch, or a name not fetched yet. */
  private async needsFetch(mirror: string, ref: string | undefined): Promise<boolean> {
    if (ref === undefined) return true;
    if (await refExists(mirror, `refs/tags/${ref}`)) return false;
    if (await refExists(mirror, `refs/heads/${ref}`)) return true;
    return !(/^[0-9a-f]{7,40}$/i.test(ref) && (await this.commitOf(mirror, ref)));
  }

  private async commitOf(mirror: string, ref: string | undefined): Promise<string | undefined> {
    // A tag wins over a branch of the same name, as git itself resolves them.
    const candidates = ref === undefined ? ['HEAD'] : [`refs/tags/${ref}`, `refs/heads/${ref}`, ref];
    for (const c of candidates) {
      const sha = await git(mirror, ['rev-parse', '--verify', '--quiet', `${c}^{commit}`]).catch(() => '');
      if (sha.trim()) return sha.trim();
    }
    return undefined;
  }
}

function isUrl(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/]+@[^/:]+:/.test(repo);
}

/** A URL without the user and password it may carry, for messages and records. */
export function displayUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

function refExists(mirror: string, ref: string): Promise<boolean> {
  return git(mirror, ['show-ref', '--verify', '--quiet', ref]).then(
    () => true,
    () => false,
  );
}

/** Runs git, with no prompt for credentials; fails with git's own message (its `fatal:` line). */
function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, maxBuffer: 16 << 20, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const lines = stderr.trim().split('\n').filter(Boolean);
      const fatal = lines.find((l) => l.startsWith('fatal:')) ?? lines.at(-1) ?? err.message;
      reject(new ProviderFetchError(displayUrl(fatal.replace(/^fatal:\s*/, 'git: '))));
    });
  });
}
