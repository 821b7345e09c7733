import type { RestContext, RestHandlers } from '../rest-handler.js';
import { GithubApiError } from '../sim-errors.js';
import type { SimComment } from '../sim-state.js';

/** GitHub refuses comment bodies over 65,536 characters. */
const MAX_BODY = 65_536;

function ownComment({ sim, repo, params }: RestContext): SimComment {
  const comment = sim.state.comments.get(Number(params.comment_id));
  if (!comment || comment.repo.toLowerCase() !== sim.state.fullName(repo).toLowerCase()) throw new GithubApiError(404, 'Not Found');
  return comment;
}

function checkBody(body: string): void {
  if (body.length > MAX_BODY) throw new GithubApiError(422, 'Validation Failed', {}, { errors: [{ resource: 'IssueComment', code: 'custom', field: 'body', message: `body is too long (maximum is ${MAX_BODY} characters)` }] });
}

/** Comments the app writes (as its bot user), edits, and reactions to comments. */
export const issueHandlers: RestHandlers = {
  'issues/create-comment': {
    auth: 'repo',
    permissions: { issues: 'write', pull_requests: 'write' },
    async handle({ sim, repo, params, body }) {
      const issue = sim.state.issues.get(sim.state.issueKey(repo, Number(params.issue_number)));
      if (!issue) throw new GithubApiError(404, 'Not Found');
      checkBody(body.body);
      const now = new Date().toISOString();
      const comment: SimComment = { id: sim.state.id(), repo: issue.repo, issueNumber: issue.number, user: sim.objects.botLogin(), body: body.body, createdAt: now, updatedAt: now, byApp: true };
      sim.state.comments.set(comment.id, comment);
      return { status: 201, body: sim.objects.issueComment(comment), headers: { location: `${sim.objects.api}/repos/${issue.repo}/issues/comments/${comment.id}` } };
    },
  },

  'issues/update-comment': {
    auth: 'repo',
    permissions: { issues: 'write', pull_requests: 'write' },
    async handle(ctx) {
      const comment = ownComment(ctx);
      // An app may edit only what it wrote, as a user may edit only their own comments.
      if (!comment.byApp) throw new GithubApiError(403, 'Resource not accessible by integration');
      checkBody(ctx.body.body);
      comment.body = ctx.body.body;
      comment.updatedAt = new Date().toISOString();
      return { status: 200, body: ctx.sim.objects.issueComment(comment) };
    },
  },

  'reactions/create-for-issue-comment': {
    auth: 'repo',
    permissions: { issues: 'write', pull_requests: 'write' },
    async handle(ctx) {
      const { sim, body } = ctx;
      const comment = ownComment(ctx);
      const user = sim.objects.botLogin();
      for (const r of sim.state.reactions.values()) if (r.commentId === comment.id && r.user === user && r.content === body.content) return { status: 200, body: sim.objects.reaction(r.id) };
      const id = sim.state.id();
      sim.state.reactions.set(id, { id, commentId: comment.id, content: body.content, user, createdAt: new Date().toISOString() });
      return { status: 201, body: sim.objects.reaction(id) };
    },
  },
};
