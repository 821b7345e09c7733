import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Json } from './github-objects.js';
import { sendPush } from './send-push.js';
import type { SimCore } from './sim-core.js';
import { SimAdminError } from './sim-errors.js';
import type { Permissions, RepoRole, SimComment, SimIssue, SimRepo } from './sim-state.js';
import type { Delivery } from './webhook-sender.js';

const run = promisify(execFile);
const ROLES: RepoRole[] = ['admin', 'maintain', 'write', 'triage', 'read', 'none'];

/** What a delivery looks like to a test: enough to assert on, without the body. */
export function deliverySummary(d: Delivery | null): { id: string; event: string; action: string | null; status: number | null; error: string | null } | null {
  if (!d) return null;
  const last = d.attempts[d.attempts.length - 1];
  return { id: d.id, event: d.event, action: d.action, status: last?.status ?? null, error: last?.error ?? null };
}

function role(permission: string | undefined): RepoRole | undefined {
  if (permission === undefined) return undefined;
  // The permission API's legacy names are accepted too.
  const mapped = permission === 'push' ? 'write' : permission === 'pull' ? 'read' : permission;
  if (!ROLES.includes(mapped as RepoRole)) throw new SimAdminError(400, `permission must be one of ${ROLES.join(', ')}`);
  return mapped as RepoRole;
}

/**
 * What a person does on GitHub, for tests: make repositories, install the app, open pull
 * requests, comment, push, click Re-run. Each sends the webhook GitHub would send, and returns
 * its delivery (null when the app is not installed on the repository).
 */
export class SimAdmin {
  constructor(private readonly core: SimCore) {}

  async createRepo(o: { owner: string; name: string; path: string; private?: boolean; forkOf?: string }) {
    if (o.forkOf) {
      const [fo, fn] = o.forkOf.split('/') as [string, string];
      this.core.state.adminRepo(fo, fn);
    }
    const repo = await this.core.createRepo(o.owner, o.name, o.path, { private: o.private, forkOf: o.forkOf });
    return this.repoInfo(repo);
  }

  repoInfo(repo: SimRepo) {
    const urls = this.core.objects.repoUrls(repo);
    return { id: repo.id, full_name: this.core.state.fullName(repo), clone_url: urls.clone, html_url: urls.html, api_url: urls.api, default_branch: repo.defaultBranch, private: repo.private };
  }

  /** Pushes `refspecs` (every branch and tag by default) of the folder `path` as `user`, then sends the push webhooks. */
  async push(o: { owner: string; repo: string; path: string; refspecs?: string[]; user?: string; force?: boolean }) {
    const repo = this.core.state.adminRepo(o.owner, o.repo);
    const before = await this.core.store(repo).refs();
    const refspecs = o.refspecs ?? ['refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*'];
    try {
      await run('git', ['-C', o.path, 'push', '--quiet', ...(o.force ? ['--force'] : []), repo.gitDir, ...refspecs]);
    } catch (err) {
      throw new SimAdminError(400, `git push from ${o.path} failed: ${(err as Error).message.trim()}`);
    }
    const deliveries = await sendPush(this.core, repo, before, o.user ?? repo.owner);
    return { deliveries: deliveries.map(deliverySummary) };
  }

  async createInstallation(o: { account: string; repositories?: string[]; permissions?: Permissions; sender?: string }) {
    const inst = this.core.createInstallation(o.account, o.repositories, o.permissions);
    const delivery = await this.core.webhooks.send('installation-created', this.core.events.installationCreated(inst, o.sender ?? o.account));
    return { id: inst.id, account: inst.account, repository_selection: inst.selection, delivery: deliverySummary(delivery) };
  }

  createToken(installationId: number, scope: { repositories?: string[]; repository_ids?: number[]; permissions?: Permissions } = {}) {
    const inst = this.core.state.installations.get(installationId);
    if (!inst) throw new SimAdminError(404, `no installation ${installationId}`);
    const token = this.core.issueToken(inst, scope);
    return { token: token.token, expires_at: new Date(token.expiresAt).toISOString() };
  }

  /** Makes a token expire now, to test what the app does with a 401. */
  expireToken(token: string): void {
    const t = this.core.state.tokens.get(token);
    if (!t) throw new SimAdminError(404, 'no such token');
    t.expiresAt = Date.now() - 1;
  }

  setPermission(owner: string, repoName: string, user: string, permission: string): void {
    const repo = this.core.state.adminRepo(owner, repoName);
    this.core.state.user(user);
    repo.roles.set(user.toLowerCase(), role(permission)!);
  }

  createIssue(o: { owner: string; repo: string; title: string; user?: string; body?: string }) {
    const repo = this.core.state.adminRepo(o.owner, o.repo);
    const issue: SimIssue = { number: this.core.state.nextIssueNumber(repo), repo: this.core.state.fullName(repo), title: o.title, body: o.body ?? null, user: o.user ?? repo.owner, createdAt: new Date().toISOString() };
    this.core.state.user(issue.user);
    this.core.state.issues.set(this.core.state.issueKey(repo, issue.number), issue);
    return { number: issue.number };
  }

  /**
   * Opens a pull request from `head` (a branch of the repository, or of `fork_owner`'s fork of
   * it, also written `fork_owner:branch`) into `base`. As on GitHub, the head commit is also
   * fetchable from the base repository as `refs/pull/N/head`.
   */
  async createPull(o: { owner: string; repo: string; head: string; base?: string; title: string; body?: string; user?: string; fork_owner?: string }) {
    const repo = this.core.state.adminRepo(o.owner, o.repo);
    let [forkOwner, branch] = o.head.includes(':') ? (o.head.split(':') as [string, string]) : [o.fork_owner, o.head];
    if (forkOwner?.toLowerCase() === repo.owner.toLowerCase()) forkOwner = undefined;
    let headRepo = repo;
    if (forkOwner) {
      const fork = [...this.core.state.repos.values()].find((r) => r.owner.toLowerCase() === forkOwner!.toLowerCase() && r.forkOf?.toLowerCase() === this.core.state.fullName(repo).toLowerCase());
      if (!fork) throw new SimAdminError(400, `${forkOwner} has no fork of ${this.core.state.fullName(repo)}: POST /_sim/repos {owner: "${forkOwner}", name, path, fork_of: "${this.core.state.fullName(repo)}"} first`);
      headRepo = fork;
    }
    const baseRef = o.base ?? repo.defaultBranch;
    const headSha = await this.core.store(headRepo).commit(`refs/heads/${branch}`);
    const baseSha = await this.core.store(repo).commit(`refs/heads/${baseRef}`);
    if (!headSha) throw new SimAdminError(400, `no branch ${branch} in ${this.core.state.fullName(headRepo)}`);
    if (!baseSha) throw new SimAdminError(400, `no branch ${baseRef} in ${this.core.state.fullName(repo)}`);
    const number = this.core.state.nextIssueNumber(repo);
    await this.core.store(repo).git(['fetch', '--quiet', headRepo.gitDir, `+refs/heads/${branch}:refs/pull/${number}/head`]);
    const user = o.user ?? headRepo.owner;
    this.core.state.user(user);
    const issue: SimIssue = {
      number, repo: this.core.state.fullName(repo), title: o.title, body: o.body ?? null, user, createdAt: new Date().toISOString(),
      pull: { head: { repo: this.core.state.fullName(headRepo), ref: branch!, sha: headSha }, base: { ref: baseRef, sha: baseSha } },
    };
    this.core.state.issues.set(this.core.state.issueKey(repo, number), issue);
    const delivery = await this.core.sendForRepo(repo, (inst) => this.core.events.pullRequestOpened(issue, repo, inst), 'pull-request-opened');
    return { number, head_sha: headSha, delivery: deliverySummary(delivery) };
  }

  /** A comment by `user` (whose role on the repository becomes `permission` when given), with its webhook. */
  async comment(o: { owner: string; repo: string; number: number; user: string; body: string; permission?: string }) {
    const repo = this.core.state.adminRepo(o.owner, o.repo);
    if (o.permission !== undefined) this.setPermission(o.owner, o.repo, o.user, o.permission);
    this.core.state.user(o.user);
    const issue = this.core.state.issues.get(this.core.state.issueKey(repo, Number(o.number)));
    if (!issue) throw new SimAdminError(404, `no issue or pull request #${o.number} in ${this.core.state.fullName(repo)}`);
    const now = new Date().toISOString();
    const comment: SimComment = { id: this.core.state.id(), repo: issue.repo, issueNumber: issue.number, user: o.user, body: o.body, createdAt: now, updatedAt: now, byApp: false };
    this.core.state.comments.set(comment.id, comment);
    const delivery = await this.core.sendForRepo(repo, (inst) => this.core.events.issueComment('created', comment, issue, repo, inst), 'issue-comment-created');
    return { id: comment.id, delivery: deliverySummary(delivery) };
  }

  async editComment(o: { owner: string; repo: string; id: number; body: string }) {
    const repo = this.core.state.adminRepo(o.owner, o.repo);
    const comment = this.core.state.comments.get(Number(o.id));
    if (!comment || comment.repo.toLowerCase() !== this.core.state.fullName(repo).toLowerCase()) throw new SimAdminError(404, `no comment ${o.id} in ${this.core.state.fullName(repo)}`);
    const previous = comment.body;
    comment.body = o.body;
    comment.updatedAt = new Date().toISOString();
    const issue = this.core.state.issues.get(this.core.state.issueKey(repo, comment.issueNumber))!;
    const delivery = await this.core.sendForRepo(repo, (inst) => this.core.events.issueComment('edited', comment, issue, repo, inst, previous), 'issue-comment-edited');
    return { id: comment.id, delivery: deliverySummary(delivery) };
  }

  private checkRunRepo(id: number) {
    const checkRun = this.core.state.checkRuns.get(Number(id));
    if (!checkRun) throw new SimAdminError(404, `no check run ${id}`);
    const [owner, name] = checkRun.repo.split('/') as [string, string];
    return { checkRun, repo: this.core.state.adminRepo(owner, name) };
  }

  /** A click on "Re-run" of a check run. */
  async rerequestCheckRun(id: number, user?: string) {
    const { checkRun, repo } = this.checkRunRepo(id);
    const delivery = await this.core.sendForRepo(repo, (inst) => this.core.events.checkRun('rerequested', checkRun, repo, inst, user ?? repo.owner), 'check-run-rerequested');
    return { delivery: deliverySummary(delivery) };
  }

  /** A click on one of the check run's buttons (an `actions` entry the app set). */
  async requestAction(id: number, identifier: string, user?: string) {
    const { checkRun, repo } = this.checkRunRepo(id);
    if (!checkRun.actions.some((a) => a.identifier === identifier)) {
      throw new SimAdminError(400, `check run ${id} has no button ${identifier}: it has ${checkRun.actions.map((a) => a.identifier).join(', ') || 'none'}`);
    }
    const delivery = await this.core.sendForRepo(repo, (inst) => this.core.events.checkRun('requested_action', checkRun, repo, inst, user ?? repo.owner, identifier), 'check-run-requested-action');
    return { delivery: deliverySummary(delivery) };
  }

  async redeliver(id: string) {
    const delivery = await this.core.webhooks.redeliver(id);
    if (!delivery) throw new SimAdminError(404, `no delivery ${id}`);
    return deliverySummary(delivery);
  }

  deliveries() {
    return [...this.core.webhooks.deliveries.values()].map((d) => ({ ...deliverySummary(d), attempts: d.attempts, payload: JSON.parse(d.body) }));
  }

  checkRuns(owner: string, name: string): Json[] {
    const full = this.core.state.fullName(this.core.state.adminRepo(owner, name)).toLowerCase();
    return [...this.core.state.checkRuns.values()].filter((c) => c.repo.toLowerCase() === full).map((c) => ({ ...this.core.objects.checkRun(c), actions: c.actions, updates: c.updates }));
  }

  comments(owner: string, name: string): Json[] {
    const full = this.core.state.fullName(this.core.state.adminRepo(owner, name)).toLowerCase();
    return [...this.core.state.comments.values()]
      .filter((c) => c.repo.toLowerCase() === full)
      .map((c) => ({
        ...this.core.objects.issueComment(c),
        issue_number: c.issueNumber,
        reactions_list: [...this.core.state.reactions.values()].filter((r) => r.commentId === c.id).map((r) => ({ content: r.content, user: r.user })),
      }));
  }

  releases(owner: string, name: string): Json[] {
    const full = this.core.state.fullName(this.core.state.adminRepo(owner, name)).toLowerCase();
    return [...this.core.state.releases.values()].filter((r) => r.repo.toLowerCase() === full).map((r) => this.core.objects.release(r));
  }
}
