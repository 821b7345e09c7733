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
