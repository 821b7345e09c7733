import type { ProbotOctokit } from 'probot';

/** The roles that may run, stop and tag (GitHub's collaborator roles with write access). */
export const WRITERS = new Set(['admin', 'maintain', 'write']);

/**
 * A user's role on a repository, from the collaborator permission API (never the comment's
 * `author_association`, which says nothing of write access): `admin`, `maintain`, `write`,
 * `triage`, `read`, a custom role's name, or `none` for someone who is not a collaborator.
 */
export async function permissionOf(octokit: ProbotOctokit, repo: { owner: string; repo: string }, username: string): Promise<string> {
  try {
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ ...repo, username });
    const role = (data as { role_name?: string }).role_name;
    return role && role.length > 0 ? role : data.permission;
  } catch (err) {
    // Not a collaborator, or not a user GitHub knows.
    if ((err as { status?: number }).status === 404) return 'none';
    throw err;
  }
}

/** How long a role without write access is remembered (a new writer waits at most this long). */
export const READER_ROLE_KEPT_MS = 60_000;

/**
 * permissionOf with a memory of users who may not write: a flood of comments from one of them asks
 * GitHub once a minute, not once per comment, so it neither holds the repository's queue nor spends
 * the installation's rate limit. Writers are asked every time: a revoked writer must stop at once.
 * Concurrent questions about one user share one request.
 */
export class RepoPermissions {
  private readonly readers = new Map<string, { role: string; at: number }>();
  private readonly asking = new Map<string, Promise<string>>();

  constructor(private readonly now: () => number = Date.now) {}

  async of(octokit: ProbotOctokit, repo: { owner: string; repo: string }, username: string): Promise<string> {
    const key = `${repo.owner}/${repo.repo}@${username}`.toLowerCase();
    const known = this.readers.get(key);
    if (known && this.now() - known.at < READER_ROLE_KEPT_MS) return known.role;
    const pending = this.asking.get(key);
    if (pending) return pending;
    const asked = permissionOf(octokit, repo, username).finally(() => this.asking.delete(key));
    this.asking.set(key, asked);
    const role = await asked;
    if (WRITERS.has(role)) this.readers.delete(key);
    else this.remember(key, role);
    return role;
  }

  private remember(key: string, role: string): void {
    this.readers.delete(key);
    // Bounded: the oldest go first (a Map keeps its insertion order).
    if (this.readers.size >= 10_000) this.readers.delete(this.readers.keys().next().value!);
    this.readers.set(key, { role, at: this.now() });
  }
}
