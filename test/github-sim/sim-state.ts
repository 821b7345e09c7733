import { SimAdminError, notFound } from './sim-errors.js';

/** The SHA GitHub gives for "no commit": a branch's `before` when it was created. */
export const ZERO_SHA = '0000000000000000000000000000000000000000';

/** Repository roles as GitHub names them; the permission API answers the legacy level of each. */
export type RepoRole = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';
export type Permissions = Record<string, 'read' | 'write' | 'admin'>;

export interface SimUser {
  id: number;
  login: string;
  type: 'User' | 'Organization' | 'Bot';
}

export interface SimRepo {
  id: number;
  owner: string;
  name: string;
  private: boolean;
  defaultBranch: string;
  /** The sim's own bare repository: the repository's git data (branches, tags, contents). */
  gitDir: string;
  createdAt: string;
  /** Full name of the repository this one is a fork of. */
  forkOf?: string;
  roles: Map<string, RepoRole>;
  /** Every change of a branch, oldest first, with the time it was pushed: the repository activity API. */
  activity: SimActivity[];
}

/** One change of a branch as GitHub records it (`GET /repos/{owner}/{repo}/activity`). */
export interface SimActivity {
  id: number;
  ref: string;
  before: string;
  after: string;
  /** When the ref moved: GitHub's time, whatever the commits' dates say. */
  timestamp: string;
  type: 'push' | 'force_push' | 'branch_creation' | 'branch_deletion';
  actor: string;
}

export interface SimInstallation {
  id: number;
  account: string;
  selection: 'all' | 'selected';
  repositoryIds: number[];
  permissions: Permissions;
  events: string[];
  createdAt: string;
}

export interface SimToken {
  token: string;
  installationId: number;
  expiresAt: number;
  /** null: every repository of the installation. */
  repositoryIds: number[] | null;
  permissions: Permissions;
}

export interface SimIssue {
  number: number;
  repo: string;
  title: string;
  body: string | null;
  user: string;
  createdAt: string;
  /** Set for pull requests: the head is in `head.repo` (a fork's full name, or the base repository). */
  pull?: { head: { repo: string; ref: string; sha: string }; base: { ref: string; sha: string } };
}

export interface SimComment {
  id: number;
  repo: string;
  issueNumber: number;
  user: string;
  body: string;
  createdAt: string;
  updatedAt: string;
  /** True when the app wrote it: `performed_via_github_app` is the app. */
  byApp: boolean;
}

export interface SimReaction {
  id: number;
  commentId: number;
  content: string;
  user: string;
  createdAt: string;
}

export interface SimCheckRun {
  id: number;
  repo: string;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  startedAt: string | null;
  completedAt: string | null;
  detailsUrl: string | null;
  externalId: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  actions: { label: string; description: string; identifier: string }[];
  checkSuiteId: number;
  /** Every accepted create or update body, in order: what a test asserts on. */
  updates: Record<string, unknown>[];
}

export interface SimRelease {
  id: number;
  repo: string;
  tagName: string;
  targetCommitish: string;
  name: string | null;
  body: string | null;
  draft: boolean;
  prerelease: boolean;
  createdAt: string;
  publishedAt: string | null;
  author: string;
}

export interface SimAsset {
  id: number;
  releaseId: number;
  name: string;
  label: string | null;
  contentType: string;
  size: number;
  /** Where the uploaded bytes are, under the sim's data folder. */
  file: string;
  digest: string;
  createdAt: string;
  updatedAt: string;
  uploader: string;
}

/** Everything the sim knows, in plain maps: one object, so that handlers share one truth. */
export class SimState {
  private nextId = 1000;
  readonly users = new Map<string, SimUser>();
  readonly repos = new Map<string, SimRepo>();
  readonly installations = new Map<number, SimInstallation>();
  readonly tokens = new Map<string, SimToken>();
  readonly issues = new Map<string, SimIssue>();
  readonly comments = new Map<number, SimComment>();
  readonly reactions = new Map<number, SimReaction>();
  readonly checkRuns = new Map<number, SimCheckRun>();
  /** `repoId:sha` → check suite id. */
  readonly checkSuites = new Map<string, number>();
  readonly releases = new Map<number, SimRelease>();
  readonly assets = new Map<number, SimAsset>();

  id(): number {
    return this.nextId++;
  }

  user(login: string, type: SimUser['type'] = 'User'): SimUser {
    let user = this.users.get(login.toLowerCase());
    if (!user) {
      user = { id: this.id(), login, type };
      this.users.set(login.toLowerCase(), user);
    }
    return user;
  }

  /** The repository `owner/name` (case-insensitive, as GitHub's routes are). */
  findRepo(owner: string, name: string): SimRepo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  repo(owner: string, name: string): SimRepo {
    const repo = this.findRepo(owner, name);
    if (!repo) throw notFound();
    return repo;
  }

  adminRepo(owner: string, name: string): SimRepo {
    const repo = this.findRepo(owner, name);
    if (!repo) throw new SimAdminError(404, `no repository ${owner}/${name}: make it with POST /_sim/repos first`);
    return repo;
  }

  repoById(id: number): SimRepo | undefined {
    for (const repo of this.repos.values()) if (repo.id === id) return repo;
    return undefined;
  }

  fullName(repo: SimRepo): string {
    return `${repo.owner}/${repo.name}`;
  }

  /** The installation that covers `repo`, if the app is installed on it. */
  installationFor(repo: SimRepo): SimInstallation | undefined {
    for (const inst of this.installations.values()) {
      if (inst.account.toLowerCase() !== repo.owner.toLowerCase()) continue;
      if (inst.selection === 'all' || inst.repositoryIds.includes(repo.id)) return inst;
    }
    return undefined;
  }

  installationRepos(inst: SimInstallation): SimRepo[] {
    return [...this.repos.values()].filter((r) => r.owner.toLowerCase() === inst.account.toLowerCase() && (inst.selection === 'all' || inst.repositoryIds.includes(r.id)));
  }

  issueKey(repo: SimRepo, number: number): string {
    return `${this.fullName(repo)}#${number}`.toLowerCase();
  }

  nextIssueNumber(repo: SimRepo): number {
    let n = 0;
    for (const issue of this.issues.values()) if (issue.repo.toLowerCase() === this.fullName(repo).toLowerCase()) n = Math.max(n, issue.number);
    return n + 1;
  }

  /** The role of `login` on `repo`: the owner is admin, others what a test recorded, else none. */
  role(repo: SimRepo, login: string): RepoRole {
    if (login.toLowerCase() === repo.owner.toLowerCase()) return 'admin';
    return repo.roles.get(login.toLowerCase()) ?? 'none';
  }
}
