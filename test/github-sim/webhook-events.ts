import type { PushedCommit } from './git-store.js';
import type { GithubObjects } from './github-objects.js';
import type { SimCheckRun, SimComment, SimInstallation, SimIssue, SimRepo } from './sim-state.js';

type Json = any;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `fill` over `template`: the sim's values win, the official example keeps what the sim does not model. */
export function overlay(template: Json, fill: Json): Json {
  if (!isObject(template) || !isObject(fill)) return fill;
  const out: Json = { ...template };
  for (const [k, v] of Object.entries(fill)) out[k] = overlay(template[k], v);
  return out;
}

/**
 * Builds webhook payloads: the official example of the event and action (webhooks-subset.json,
 * from @octokit/webhooks-examples) with the sim's state laid over it. Top-level parts that would
 * describe someone else (the example's organization, enterprise) are dropped.
 */
export class WebhookEvents {
  constructor(
    private readonly objects: GithubObjects,
    private readonly examples: Record<string, Json>,
  ) {}

  private build(name: string, fill: Json): Json {
    const template = structuredClone(this.examples[name]);
    delete template.organization;
    delete template.enterprise;
    delete template.installation;
    return overlay(template, fill);
  }

  private base(repo: SimRepo, inst: SimInstallation, sender: string): Json {
    return {
      repository: this.objects.repository(repo),
      installation: { id: inst.id, node_id: Buffer.from(`Installation:${inst.id}`).toString('base64') },
      sender: this.objects.user(sender),
    };
  }

  installationCreated(inst: SimInstallation, sender: string): Json {
    const installation = this.objects.installation(inst);
    return {
      ...this.build('installation-created', { action: 'created', installation, sender: this.objects.user(sender), requester: null }),
      repositories: this.objects.state.installationRepos(inst).map((r) => this.objects.repositoryShort(r)),
    };
  }

  issueComment(action: 'created' | 'edited', comment: SimComment, issue: SimIssue, repo: SimRepo, inst: SimInstallation, previousBody?: string): Json {
    return this.build(`issue-comment-${action}`, {
      action,
      issue: this.objects.issue(issue),
      comment: this.objects.issueComment(comment),
      ...(action === 'edited' ? { changes: { body: { from: previousBody ?? '' } } } : {}),
      ...this.base(repo, inst, comment.user),
    });
  }

  pullRequestOpened(issue: SimIssue, repo: SimRepo, inst: SimInstallation): Json {
    return this.build('pull-request-opened', { action: 'opened', number: issue.number, pull_request: this.objects.pullRequest(issue), ...this.base(repo, inst, issue.user) });
  }

  checkRun(action: 'rerequested' | 'requested_action', run: SimCheckRun, repo: SimRepo, inst: SimInstallation, sender: string, identifier?: string): Json {
    const checkRun = this.objects.checkRun(run);
    const suite = {
      id: run.checkSuiteId, node_id: Buffer.from(`CheckSuite:${run.checkSuiteId}`).toString('base64'), head_branch: null, head_sha: run.headSha,
      status: run.status, conclusion: run.conclusion, url: `${this.objects.api}/repos/${run.repo}/check-suites/${run.checkSuiteId}`,
      before: null, after: null, pull_requests: checkRun.pull_requests, app: this.objects.integration(),
      created_at: run.startedAt ?? new Date().toISOString(), updated_at: run.completedAt ?? run.startedAt ?? new Date().toISOString(),
    };
    return this.build(action === 'rerequested' ? 'check-run-rerequested' : 'check-run-requested-action', {
      action,
      check_run: { ...checkRun, check_suite: suite },
      ...(action === 'requested_action' ? { requested_action: { identifier } } : {}),
      ...this.base(repo, inst, sender),
    });
  }

  push(repo: SimRepo, inst: SimInstallation, p: { ref: string; before: string; after: string; created: boolean; deleted: boolean; forced: boolean; commits: PushedCommit[]; pusher: string }): Json {
    const { html } = this.objects.repoUrls(repo);
    const commit = (c: PushedCommit) => ({
      id: c.id, tree_id: c.treeId, distinct: true, message: c.message, timestamp: c.timestamp,
      url: `${html}/commit/${c.id}`, author: c.author, committer: c.committer, added: c.added, removed: c.removed, modified: c.modified,
    });
    const repository = this.objects.repository(repo);
    const epoch = (iso: unknown) => Math.floor(Date.parse(String(iso)) / 1000);
    const sender = this.objects.user(p.pusher);
    return this.build('push', {
      ref: p.ref, before: p.before, after: p.after, created: p.created, deleted: p.deleted, forced: p.forced, base_ref: null,
      compare: p.created ? `${html}/commit/${p.after.slice(0, 12)}` : `${html}/compare/${p.before.slice(0, 12)}...${p.after.slice(0, 12)}`,
      commits: p.commits.map(commit),
      head_commit: p.commits.length ? commit(p.commits[p.commits.length - 1]!) : null,
      // Push payloads carry the repository with unix times and the owner as name/email too.
      repository: { ...repository, created_at: epoch(repository.created_at), pushed_at: Math.floor(Date.now() / 1000), owner: { ...(repository.owner as Json), name: repo.owner, email: null }, stargazers: 0, master_branch: repo.defaultBranch, url: html },
      pusher: { name: p.pusher, email: null },
      installation: { id: inst.id, node_id: Buffer.from(`Installation:${inst.id}`).toString('base64') },
      sender,
    });
  }
}
