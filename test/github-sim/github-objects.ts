import type { SimActivity, SimAsset, SimCheckRun, SimComment, SimInstallation, SimIssue, SimRelease, SimRepo, SimState, SimUser } from './sim-state.js';

/** The app as the sim registers it (GET /app). */
export interface SimApp {
  id: number;
  slug: string;
  name: string;
  owner: string;
  clientId: string;
  permissions: Record<string, string>;
  events: string[];
  createdAt: string;
}

/** REST objects are open JSON: their shape is checked by the schemas, not by TypeScript. */
export type Json = Record<string, any>;
const nodeId = (kind: string, id: number) => Buffer.from(`${kind}:${id}`).toString('base64').replace(/=+$/, '');

/**
 * Builds REST-shaped objects from the sim's state, with every field GitHub's schemas require, the
 * URLs pointing at the sim (a GitHub Enterprise Server layout: web at `/`, API at `/api/v3`).
 */
export class GithubObjects {
  constructor(
    readonly state: SimState,
    readonly app: SimApp,
    /** `http://127.0.0.1:PORT`: set once the server listens. */
    public base: string,
  ) {}

  get api(): string {
    return `${this.base}/api/v3`;
  }

  user(name: string): Json {
    const u: SimUser = this.state.user(name);
    // Bots' logins end in `[bot]`, which URLs carry encoded (`dependabot%5Bbot%5D`).
    const login = encodeURIComponent(u.login);
    const api = `${this.api}/users/${login}`;
    return {
      login: u.login, id: u.id, node_id: nodeId('User', u.id), avatar_url: `${this.base}/avatars/${login}`, gravatar_id: '',
      url: api, html_url: `${this.base}/${login}`, followers_url: `${api}/followers`, following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`, starred_url: `${api}/starred{/owner}{/repo}`, subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`, repos_url: `${api}/repos`, events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`, type: u.type, user_view_type: 'public', site_admin: false,
    };
  }

  botLogin(): string {
    return `${this.app.slug}[bot]`;
  }

  integration(): Json {
    return {
      id: this.app.id, slug: this.app.slug, client_id: this.app.clientId, node_id: nodeId('Integration', this.app.id),
      owner: this.user(this.app.owner), name: this.app.name, description: 'dstack for GitHub, as the sim registers it',
      external_url: this.base, html_url: `${this.base}/apps/${this.app.slug}`, created_at: this.app.createdAt, updated_at: this.app.createdAt,
      permissions: this.app.permissions, events: this.app.events,
    };
  }

  installation(inst: SimInstallation): Json {
    const account = this.state.user(inst.account);
    return {
      id: inst.id, account: this.user(inst.account), repository_selection: inst.selection,
      access_tokens_url: `${this.api}/app/installations/${inst.id}/access_tokens`, repositories_url: `${this.api}/installation/repositories`,
      html_url: `${this.base}/settings/installations/${inst.id}`, app_id: this.app.id, app_slug: this.app.slug, client_id: this.app.clientId,
      target_id: account.id, target_type: account.type === 'Organization' ? 'Organization' : 'User', permissions: inst.permissions, events: inst.events,
      created_at: inst.createdAt, updated_at: inst.createdAt, single_file_name: null, has_multiple_single_files: false, single_file_paths: [],
      suspended_by: null, suspended_at: null,
    };
  }

  repoUrls(repo: SimRepo): { api: string; html: string; clone: string } {
    const full = this.state.fullName(repo);
    return { api: `${this.api}/repos/${full}`, html: `${this.base}/${full}`, clone: `${this.base}/${full}.git` };
  }

  repository(repo: SimRepo): Json {
    const { api, html, clone } = this.repoUrls(repo);
    const fork = repo.forkOf ? this.state.repos.get(repo.forkOf.toLowerCase()) : undefined;
    const host = new URL(this.base).host;
    return {
      id: repo.id, node_id: nodeId('Repository', repo.id), name: repo.name, full_name: this.state.fullName(repo), owner: this.user(repo.owner),
      private: repo.private, html_url: html, description: null, fork: !!repo.forkOf, url: api,
      archive_url: `${api}/{archive_format}{/ref}`, assignees_url: `${api}/assignees{/user}`, blobs_url: `${api}/git/blobs{/sha}`,
      branches_url: `${api}/branches{/branch}`, collaborators_url: `${api}/collaborators{/collaborator}`, comments_url: `${api}/comments{/number}`,
      commits_url: `${api}/commits{/sha}`, compare_url: `${api}/compare/{base}...{head}`, contents_url: `${api}/contents/{+path}`,
      contributors_url: `${api}/contributors`, deployments_url: `${api}/deployments`, downloads_url: `${api}/downloads`, events_url: `${api}/events`,
      forks_url: `${api}/forks`, git_commits_url: `${api}/git/commits{/sha}`, git_refs_url: `${api}/git/refs{/sha}`, git_tags_url: `${api}/git/tags{/sha}`,
      git_url: `git://${host}/${this.state.fullName(repo)}.git`, issue_comment_url: `${api}/issues/comments{/number}`, issue_events_url: `${api}/issues/events{/number}`,
      issues_url: `${api}/issues{/number}`, keys_url: `${api}/keys{/key_id}`, labels_url: `${api}/labels{/name}`, languages_url: `${api}/languages`,
      merges_url: `${api}/merges`, milestones_url: `${api}/milestones{/number}`, notifications_url: `${api}/notifications{?since,all,participating}`,
      pulls_url: `${api}/pulls{/number}`, releases_url: `${api}/releases{/id}`, ssh_url: `git@${host}:${this.state.fullName(repo)}.git`,
      stargazers_url: `${api}/stargazers`, statuses_url: `${api}/statuses/{sha}`, subscribers_url: `${api}/subscribers`,
      subscription_url: `${api}/subscription`, tags_url: `${api}/tags`, teams_url: `${api}/teams`, trees_url: `${api}/git/trees{/sha}`,
      clone_url: clone, mirror_url: null, hooks_url: `${api}/hooks`, svn_url: html, homepage: null, language: null,
      forks_count: 0, forks: 0, stargazers_count: 0, watchers_count: 0, watchers: 0, size: 0, default_branch: repo.defaultBranch,
      open_issues_count: 0, open_issues: 0, is_template: false, topics: [], has_issues: true, has_projects: true, has_wiki: true,
      has_pages: false, has_downloads: true, has_discussions: false, archived: false, disabled: false,
      visibility: repo.private ? 'private' : 'public', pushed_at: repo.createdAt, created_at: repo.createdAt, updated_at: repo.createdAt,
      allow_forking: true, web_commit_signoff_required: false, license: null, network_count: 0, subscribers_count: 0,
      ...(fork ? { parent: this.repository(fork), source: this.repository(fork) } : {}),
    };
  }

  /** One entry of the repository activity API. */
  activity(a: SimActivity): Json {
    return { id: a.id, node_id: nodeId('RepositoryActivity', a.id), before: a.before, after: a.after, ref: a.ref, timestamp: a.timestamp, activity_type: a.type, actor: this.user(a.actor) };
  }

  /** The five-field repository of `installation` payloads and token responses' short lists. */
  repositoryShort(repo: SimRepo): Json {
    return { id: repo.id, node_id: nodeId('Repository', repo.id), name: repo.name, full_name: this.state.fullName(repo), private: repo.private };
  }

  issueUrl(issue: SimIssue): string {
    return `${this.api}/repos/${issue.repo}/issues/${issue.number}`;
  }

  pullRequest(issue: SimIssue): Json {
    const pull = issue.pull!;
    const base = this.state.repos.get(issue.repo.toLowerCase())!;
    const head = this.state.repos.get(pull.head.repo.toLowerCase())!;
    const api = `${this.api}/repos/${issue.repo}/pulls/${issue.number}`;
    const html = `${this.base}/${issue.repo}/pull/${issue.number}`;
    const side = (repo: SimRepo, ref: string, sha: string) => ({ label: `${repo.owner}:${ref}`, ref, sha, user: this.user(repo.owner), repo: this.repository(repo) });
    return {
      url: api, id: issue.number + base.id * 1000, node_id: nodeId('PullRequest', issue.number + base.id * 1000), html_url: html,
      diff_url: `${html}.diff`, patch_url: `${html}.patch`, issue_url: this.issueUrl(issue), commits_url: `${api}/commits`,
      review_comments_url: `${api}/comments`, review_comment_url: `${this.api}/repos/${issue.repo}/pulls/comments{/number}`,
      comments_url: `${this.issueUrl(issue)}/comments`, statuses_url: `${this.api}/repos/${pull.head.repo}/statuses/${pull.head.sha}`,
      number: issue.number, state: 'open', locked: false, title: issue.title, user: this.user(issue.user), body: issue.body,
      labels: [], milestone: null, active_lock_reason: null, created_at: issue.createdAt, updated_at: issue.createdAt,
      closed_at: null, merged_at: null, merge_commit_sha: null, assignee: null, assignees: [], requested_reviewers: [], requested_teams: [],
      head: side(head, pull.head.ref, pull.head.sha), base: side(base, pull.base.ref, pull.base.sha),
      _links: {
        self: { href: api }, html: { href: html }, issue: { href: this.issueUrl(issue) }, comments: { href: `${this.issueUrl(issue)}/comments` },
        review_comments: { href: `${api}/comments` }, review_comment: { href: `${this.api}/repos/${issue.repo}/pulls/comments{/number}` },
        commits: { href: `${api}/commits` }, statuses: { href: `${this.api}/repos/${pull.head.repo}/statuses/${pull.head.sha}` },
      },
      author_association: this.association(base, issue.user), auto_merge: null, draft: false, merged: false, mergeable: true,
      rebaseable: true, mergeable_state: 'clean', merged_by: null, comments: 0, review_comments: 0, maintainer_can_modify: false,
      commits: 1, additions: 0, deletions: 0, changed_files: 0,
    };
  }

  association(repo: SimRepo, login: string): string {
    if (login.toLowerCase() === repo.owner.toLowerCase()) return 'OWNER';
    return this.state.role(repo, login) === 'none' ? 'NONE' : 'COLLABORATOR';
  }

  reactionRollup(url: string, commentId: number): Json {
    const counts: Record<string, number> = { '+1': 0, '-1': 0, laugh: 0, confused: 0, heart: 0, hooray: 0, eyes: 0, rocket: 0 };
    for (const r of this.state.reactions.values()) if (r.commentId === commentId) counts[r.content] = (counts[r.content] ?? 0) + 1;
    return { url: `${url}/reactions`, total_count: Object.values(counts).reduce((a, b) => a + b, 0), ...counts };
  }

  issueComment(c: SimComment): Json {
    const repo = this.state.repos.get(c.repo.toLowerCase())!;
    const url = `${this.api}/repos/${c.repo}/issues/comments/${c.id}`;
    const issue = this.state.issues.get(this.state.issueKey(repo, c.issueNumber))!;
    return {
      id: c.id, node_id: nodeId('IssueComment', c.id), url, body: c.body,
      html_url: `${this.base}/${c.repo}/${issue.pull ? 'pull' : 'issues'}/${c.issueNumber}#issuecomment-${c.id}`,
      issue_url: this.issueUrl(issue), user: this.user(c.user), created_at: c.createdAt, updated_at: c.updatedAt,
      author_association: this.association(repo, c.user), performed_via_github_app: c.byApp ? this.integration() : null,
      reactions: this.reactionRollup(url, c.id),
    };
  }

  /** The issue of a comment, as `issue_comment` webhooks carry it (a pull request has `pull_request` links). */
  issue(issue: SimIssue): Json {
    const repo = this.state.repos.get(issue.repo.toLowerCase())!;
    const url = this.issueUrl(issue);
    const html = `${this.base}/${issue.repo}/${issue.pull ? 'pull' : 'issues'}/${issue.number}`;
    return {
      url, repository_url: `${this.api}/repos/${issue.repo}`, labels_url: `${url}/labels{/name}`, comments_url: `${url}/comments`,
      events_url: `${url}/events`, html_url: html, id: issue.number + repo.id * 1000, node_id: nodeId('Issue', issue.number + repo.id * 1000),
      number: issue.number, title: issue.title, user: this.user(issue.user), labels: [], state: 'open', locked: false, assignee: null,
      assignees: [], milestone: null, comments: [...this.state.comments.values()].filter((c) => c.repo === issue.repo && c.issueNumber === issue.number).length,
      created_at: issue.createdAt, updated_at: issue.createdAt, closed_at: null, author_association: this.association(repo, issue.user),
      active_lock_reason: null, body: issue.body, reactions: this.reactionRollup(url, -1), timeline_url: `${url}/timeline`,
      performed_via_github_app: null, state_reason: null,
      ...(issue.pull ? { draft: false, pull_request: { url: `${this.api}/repos/${issue.repo}/pulls/${issue.number}`, html_url: html, diff_url: `${html}.diff`, patch_url: `${html}.patch`, merged_at: null } } : {}),
    };
  }

  reaction(id: number): Json {
    const r = this.state.reactions.get(id)!;
    return { id: r.id, node_id: nodeId('Reaction', r.id), user: this.user(r.user), content: r.content, created_at: r.createdAt };
  }

  checkRun(run: SimCheckRun): Json {
    const repo = this.state.repos.get(run.repo.toLowerCase())!;
    const url = `${this.api}/repos/${run.repo}/check-runs/${run.id}`;
    const pulls = [...this.state.issues.values()].filter((i) => i.pull && i.repo === run.repo && i.pull.head.sha === run.headSha);
    return {
      id: run.id, node_id: nodeId('CheckRun', run.id), head_sha: run.headSha, external_id: run.externalId, url,
      html_url: `${this.base}/${run.repo}/runs/${run.id}`, details_url: run.detailsUrl, status: run.status, conclusion: run.conclusion,
      started_at: run.startedAt, completed_at: run.completedAt, name: run.name,
      output: { ...run.output, annotations_count: 0, annotations_url: `${url}/annotations` },
      check_suite: { id: run.checkSuiteId }, app: this.integration(),
      pull_requests: pulls.map((i) => ({
        id: i.number + repo.id * 1000, number: i.number, url: `${this.api}/repos/${i.repo}/pulls/${i.number}`,
        head: { ref: i.pull!.head.ref, sha: i.pull!.head.sha, repo: { id: repo.id, url: `${this.api}/repos/${i.pull!.head.repo}`, name: i.pull!.head.repo.split('/')[1] } },
        base: { ref: i.pull!.base.ref, sha: i.pull!.base.sha, repo: { id: repo.id, url: `${this.api}/repos/${i.repo}`, name: repo.name } },
      })),
    };
  }

  release(rel: SimRelease): Json {
    const api = `${this.api}/repos/${rel.repo}/releases/${rel.id}`;
    return {
      url: api, html_url: `${this.base}/${rel.repo}/releases/tag/${encodeURIComponent(rel.tagName)}`, assets_url: `${api}/assets`,
      upload_url: `${this.base}/api/uploads/repos/${rel.repo}/releases/${rel.id}/assets{?name,label}`,
      tarball_url: `${this.api}/repos/${rel.repo}/tarball/${encodeURIComponent(rel.tagName)}`, zipball_url: `${this.api}/repos/${rel.repo}/zipball/${encodeURIComponent(rel.tagName)}`,
      id: rel.id, node_id: nodeId('Release', rel.id), tag_name: rel.tagName, target_commitish: rel.targetCommitish, name: rel.name,
      body: rel.body, draft: rel.draft, prerelease: rel.prerelease, immutable: false, created_at: rel.createdAt, published_at: rel.publishedAt,
      updated_at: rel.publishedAt ?? rel.createdAt, author: this.user(rel.author),
      assets: [...this.state.assets.values()].filter((a) => a.releaseId === rel.id).map((a) => this.asset(a)),
    };
  }

  asset(a: SimAsset): Json {
    const rel = this.state.releases.get(a.releaseId)!;
    return {
      url: `${this.api}/repos/${rel.repo}/releases/assets/${a.id}`, id: a.id, node_id: nodeId('ReleaseAsset', a.id), name: a.name,
      label: a.label, uploader: this.user(a.uploader), content_type: a.contentType, state: 'uploaded', size: a.size, digest: a.digest,
      download_count: 0, created_at: a.createdAt, updated_at: a.updatedAt,
      browser_download_url: `${this.base}/${rel.repo}/releases/download/${encodeURIComponent(rel.tagName)}/${encodeURIComponent(a.name)}`,
    };
  }

  gitRef(repo: SimRepo, ref: string, sha: string, type = 'commit'): Json {
    const api = `${this.repoUrls(repo).api}/git`;
    return { ref, node_id: Buffer.from(`Ref:${repo.id}:${ref}`).toString('base64'), url: `${api}/${ref}`, object: { type, sha, url: `${api}/${type}s/${sha}` } };
  }
}
