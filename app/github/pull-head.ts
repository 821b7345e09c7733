import type { ProbotOctokit } from 'probot';

/** A pull request's head as read when a comment about it arrived, and what it was when the comment was written. */
export interface PullHeadAtComment {
  /** The head when the comment's delivery arrived. */
  sha: string;
  branch: string;
  /**
   * The head when the comment was written, by the head branch's pushes; null when that cannot be
   * told (no push of it before the comment is listed, the head repository is gone or unreadable).
   */
  atComment: string | null;
  /** True when the head branch was pushed at or after the comment's time: `sha` may be newer than the comment. */
  pushedSince: boolean;
  /**
   * Whether the head is another repository's (a fork's, or one deleted since: GitHub then gives no
   * head repository): its code is anyone's, whoever with write access asked to run it. Absent in
   * what an older server stored on arrival; read as true then.
   */
  untrusted?: boolean;
}

/**
 * Reads a pull request's head and tells whether it is the head the comment was written against.
 * Commit dates are the pusher's to forge, so the rule uses the head repository's activity
 * (`GET /repos/{owner}/{repo}/activity`): every push, force push and branch creation, with GitHub's
 * own time and the SHAs before and after. The head at the comment is the `after` of the last push
 * before `createdAt`; a push at the comment's time or later counts as after it (GitHub's times are
 * whole seconds, so a push in the comment's second is taken as later: refusing is the safe side).
 */
export async function pullHeadAtComment(octokit: ProbotOctokit, repo: { owner: string; repo: string }, pullNumber: number, createdAt: string): Promise<PullHeadAtComment> {
  const { data: pull } = await octokit.rest.pulls.get({ ...repo, pull_number: pullNumber });
  const head = { sha: pull.head.sha, branch: pull.head.ref, untrusted: pull.head.repo?.id !== pull.base.repo.id };
  const headRepo = pull.head.repo;
  if (!headRepo) return { ...head, atComment: null, pushedSince: false };
  // Newest first; the last push before the comment is on the first page unless 100 pushes came after it (then it refuses anyway).
  const activity = await octokit.rest.repos.listActivities({ owner: headRepo.owner.login, repo: headRepo.name, ref: `refs/heads/${pull.head.ref}`, per_page: 100 }).then(
    (r) => r.data,
    (err: { status?: number }) => {
      // A head repository the app cannot read (a private fork outside the installation): its pushes cannot be told.
      if (err.status === 404 || err.status === 403) return [];
      throw err;
    },
  );
  const commentAt = Date.parse(createdAt);
  const since = activity.filter((a) => Date.parse(a.timestamp) >= commentAt);
  const before = activity.find((a) => Date.parse(a.timestamp) < commentAt);
  return { ...head, atComment: since.length > 0 ? since[since.length - 1]!.before : (before?.after ?? null), pushedSince: since.length > 0 };
}

/** True when the head read is the one the comment was written against: only then may it run. */
export function headUnchanged(head: PullHeadAtComment): boolean {
  return !head.pushedSince && head.atComment === head.sha;
}
