import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DstackError } from '../../shared/errors.js';
import { isCommitName, runGit } from '../../shared/git-run.js';
import { WorkTrees } from './work-trees.js';

export interface CheckoutRequest {
  repoUrl: string;
  commit: string;
  /** A `git diff --binary` of the run's changes on top of the commit, if any. */
  patch?: Readable;
  /** The job's folder for the code; made here. */
  dest: string;
  /** For an HTTP(S) remote that needs it: sent as a header, never written to disk or to a message. */
  token?: string;
}

/**
 * The repositories an agent checks jobs out of: one bare mirror per repository under its work
 * folder, cloned once and fetched only when a job needs a commit it does not have. A job's code is
 * checked out of the mirror into a tree with no `.git` that leads back into it (WorkTrees, which
 * keeps trees jobs are done with to check out again), then the run's patch is applied on top. Jobs
 * never run in, or write to, the mirror.
 */
export class RepoMirrors {
  /** Work that writes a mirror (clone, fetch), one at a time; checkouts only read it, alongside. */
  private readonly locks = new Map<string, Promise<unknown>>();

  private readonly trees: WorkTrees;

  constructor(private readonly workDir: string) {
    this.trees = new WorkTrees(path.join(workDir, 'trees'));
  }

  /** Commits each mirror is known to have: a warm agent asks git only for new ones. */
  private readonly known = new Set<string>();

  async checkout(request: CheckoutRequest): Promise<void> {
    const mirror = path.join(this.workDir, 'mirrors', `${crypto.createHash('sha256').update(request.repoUrl).digest('hex').slice(0, 16)}.git`);
    const key = `${mirror}\0${request.commit}`;
    const wasKnown = this.known.has(key);
    if (!wasKnown) {
      await this.locked(mirror, () => this.ensureCommit(mirror, request));
      // Bounded: an agent up for months sees many commits; forgetting them costs one git call each.
      if (this.known.size >= 10_000) this.known.clear();
      this.known.add(key);
    }
    try {
      await this.trees.checkOut(mirror, request.commit, request.dest);
    } catch (err) {
      if (!wasKnown) throw err;
      // Pruned from the mirror since (a branch deleted, then git gc): fetch it again, once.
      this.known.delete(key);
      return this.checkout(request);
    }
    if (request.patch) await applyPatch(mirror, request.dest, request.patch);
  }

  /** The job is done with the code at `dest`: it is taken back (and gone from there). */
  release(dest: string): Promise<void> {
    return this.trees.checkIn(dest);
  }

  private async locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.locks.set(
      key,
      next.catch(() => {}),
    );
    return next;
  }

  /** Clones the mirror the first time, fetches when the commit is missing; the mirror stays whole if either fails. */
  private async ensureCommit(mirror: string, { repoUrl, commit, token }: CheckoutRequest): Promise<void> {
    const secret = token ? [token, Buffer.from(`x-access-token:${token}`).toString('base64')] : [];
    // The header goes in through GIT_CONFIG_* (our own values), never on a command line. `--`
    // before what came from the run (the URL, the commit): nothing of it is taken as an option.
    const env = authEnv(token);
    try {
      if (!fs.existsSync(mirror)) {
        await fsp.mkdir(path.dirname(mirror), { recursive: true });
        // Cloned beside and renamed into place: a failed clone leaves nothing half made.
        const tmp = `${mirror}.${process.pid}.tmp`;
        await fsp.rm(tmp, { recursive: true, force: true });
        try {
          await runGit(['clone', '--mirror', '--quiet', '--', repoUrl, tmp], { cwd: path.dirname(mirror), env });
          await fsp.rename(tmp, mirror);
        } finally {
          await fsp.rm(tmp, { recursive: true, force: true });
        }
      }
      if (await hasCommit(mirror, commit)) return;
      await runGit(['fetch', '--quiet', '--prune', 'origin'], { cwd: mirror, env });
      // A commit on no branch (a pull request's head, say) may still be fetched by its name.
      if (!(await hasCommit(mirror, commit)) && isCommitName(commit)) await runGit(['fetch', '--quiet', 'origin', commit], { cwd: mirror, env }).catch(() => {});
    } catch (err) {
      throw new DstackError('DSTACK_ERR_CHECKOUT', `cannot fetch ${repoUrl}: ${hide(message(err), secret)}`, { cause: err });
    }
    if (!(await hasCommit(mirror, commit))) {
      throw new DstackError('DSTACK_ERR_CHECKOUT', `commit ${commit} is not in ${repoUrl}: push it, then run again`);
    }
  }
}

/** Credentials as an HTTP header in git's environment (GIT_CONFIG_*), never on a command line. */
function authEnv(token: string | undefined): Record<string, string> {
  // A fetch that moves less than 1 KB/s for 2 minutes gives up rather than hold the mirror's lock,
  // and with it every job of the repository, for ever.
  const config: [string, string][] = [
    ...(token ? [['http.extraHeader', `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`] as [string, string]] : []),
    ['http.lowSpeedLimit', '1000'],
    ['http.lowSpeedTime', '120'],
  ];
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(config.length) };
  config.forEach(([key, value], i) => Object.assign(env, { [`GIT_CONFIG_KEY_${i}`]: key, [`GIT_CONFIG_VALUE_${i}`]: value }));
  return env;
}

async function hasCommit(mirror: string, commit: string): Promise<boolean> {
  if (!isCommitName(commit)) return false;
  return runGit(['cat-file', '-e', `${commit}^{commit}`], { cwd: mirror }).then(
    () => true,
    () => false,
  );
}

/**
 * Applies the run's patch to the job's tree (the work tree only: nothing is written to the mirror).
 * git apply is all or nothing: a patch that does not apply changes nothing and fails the job with
 * git's own message.
 */
function applyPatch(mirror: string, dest: string, patch: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['--git-dir', mirror, '--work-tree', dest, 'apply', '--binary', '--whitespace=nowarn', '-'], {
      cwd: dest,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    patch.on('error', (err) => child.stdin.destroy(err));
    patch.pipe(child.stdin);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new DstackError('DSTACK_ERR_PATCH', `the run's changes do not apply to its commit: ${stderr.trim().split('\n').join('; ')}`)),
    );
  });
}

function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim().split('\n').filter(Boolean).at(-1) ?? String(err);
}

function hide(text: string, secrets: string[]): string {
  return secrets.reduce((t, s) => t.split(s).join('***'), text);
}
