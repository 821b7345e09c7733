import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { FaultInjector } from './fault-injector.js';
import { GitStore } from './git-store.js';
import { GithubObjects, type SimApp } from './github-objects.js';
import { RequestLog } from './request-log.js';
import { SchemaValidator } from './schema-validator.js';
import { GithubApiError, SimAdminError, unprocessable } from './sim-errors.js';
import { SimState, ZERO_SHA, type Permissions, type SimInstallation, type SimRepo, type SimToken } from './sim-state.js';
import { WebhookEvents } from './webhook-events.js';
import { WebhookSender, type Delivery } from './webhook-sender.js';

/**
 * What a fresh installation grants, and the events it is sent: those of the app's own manifest
 * (app.yml), as GitHub takes them when the app is registered from it. So every test through the
 * sim runs with exactly the permissions the manifest asks for, and one it lacks fails them.
 */
const MANIFEST = YAML.parse(fs.readFileSync(fileURLToPath(new URL('../../app.yml', import.meta.url)), 'utf8')) as { default_permissions: Permissions; default_events: string[] };
export const APP_PERMISSIONS: Permissions = MANIFEST.default_permissions;
export const APP_EVENTS: string[] = MANIFEST.default_events;
const TOKEN_LIFETIME_MS = 60 * 60 * 1000;
const LEVEL = { read: 1, write: 2, admin: 3 } as const;

export interface SimCoreOptions {
  dataDir: string;
  webhookUrl: string | null;
  base: string;
}

/**
 * The sim's shared parts: state, schemas, keys, git data, webhooks, faults and the request log,
 * with the operations that REST handlers and the admin API both use.
 */
export class SimCore {
  readonly state = new SimState();
  readonly validator = new SchemaValidator();
  readonly faults = new FaultInjector();
  readonly log = new RequestLog();
  readonly app: SimApp;
  readonly objects: GithubObjects;
  readonly events: WebhookEvents;
  readonly webhooks: WebhookSender;
  readonly publicKey: crypto.KeyObject;
  readonly privateKeyPath: string;
  readonly dataDir: string;
  /** Schema problems not yet taken by a test: `close()` throws while there are any. */
  readonly schemaProblems: string[] = [];
  /** Changes a test makes to an operation's responses, to see that validation catches them. */
  readonly breakers = new Map<string, (body: any) => unknown>();
  /** Signs presigned asset-download URLs, as GitHub's storage redirects are signed. */
  readonly urlKey = crypto.randomBytes(16);
  private stores = new Map<number, GitStore>();
  private pending = new Set<Promise<unknown>>();

  constructor(options: SimCoreOptions) {
    this.dataDir = options.dataDir;
    fs.mkdirSync(path.join(this.dataDir, 'git'), { recursive: true });
    fs.mkdirSync(path.join(this.dataDir, 'assets'), { recursive: true });
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = publicKey;
    this.privateKeyPath = path.join(this.dataDir, 'app-private-key.pem');
    // PKCS#1, as the key file GitHub lets one download.
    fs.writeFileSync(this.privateKeyPath, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
    const id = 100_000 + crypto.randomInt(900_000);
    this.app = {
      id, slug: 'dstack-sim', name: 'dstack (github-sim)', owner: 'github-sim', clientId: `Iv23sim${id}`,
      permissions: APP_PERMISSIONS, events: APP_EVENTS, createdAt: new Date().toISOString(),
    };
    this.state.user('github-sim', 'Organization');
    this.state.user(`${this.app.slug}[bot]`, 'Bot');
    this.objects = new GithubObjects(this.state, this.app, options.base);
    this.events = new WebhookEvents(this.objects, this.validator.webhooks.examples);
    this.webhooks = new WebhookSender(this.validator, crypto.randomBytes(20).toString('hex'), id, options.webhookUrl, (p) => this.schemaProblems.push(p));
  }

  store(repo: SimRepo): GitStore {
    let store = this.stores.get(repo.id);
    if (!store) this.stores.set(repo.id, (store = new GitStore(repo.gitDir)));
    return store;
  }

  async createRepo(owner: string, name: string, source: string, opts: { private?: boolean; forkOf?: string } = {}): Promise<SimRepo> {
    if (!/^[\w.-]+$/.test(owner) || !/^[\w.-]+$/.test(name)) throw new SimAdminError(400, 'owner and name must be GitHub names: letters, digits, ., - and _');
    if (this.state.findRepo(owner, name)) throw new SimAdminError(409, `repository ${owner}/${name} exists already`);
    if (!fs.existsSync(source)) throw new SimAdminError(400, `no folder ${source} to make ${owner}/${name} from`);
    this.state.user(owner);
    const id = this.state.id();
    const gitDir = path.join(this.dataDir, 'git', owner, `${name}.git`);
    fs.mkdirSync(path.dirname(gitDir), { recursive: true });
    const store = await GitStore.create(gitDir, source);
    const branches = [...(await store.refs()).keys()].filter((r) => r.startsWith('refs/heads/')).map((r) => r.slice('refs/heads/'.length));
    const sourceHead = await new GitStore(path.join(source, '.git')).headBranch().catch(() => null);
    const defaultBranch = sourceHead && branches.includes(sourceHead) ? sourceHead : branches.includes('main') ? 'main' : (branches[0] ?? 'main');
    await store.setHead(defaultBranch);
    const createdAt = new Date().toISOString();
    const activity = [...(await store.refs())]
      .filter(([ref]) => ref.startsWith('refs/heads/'))
      .map(([ref, sha]) => ({ id: this.state.id(), ref, before: ZERO_SHA, after: sha, timestamp: createdAt, type: 'branch_creation' as const, actor: owner }));
    const repo: SimRepo = { id, owner, name, private: opts.private ?? true, defaultBranch, gitDir, createdAt, forkOf: opts.forkOf, roles: new Map(), activity };
    this.state.repos.set(`${owner}/${name}`.toLowerCase(), repo);
    this.stores.set(id, store);
    return repo;
  }

  createInstallation(account: string, repositories?: string[], permissions: Permissions = APP_PERMISSIONS): SimInstallation {
    for (const inst of this.state.installations.values()) if (inst.account.toLowerCase() === account.toLowerCase()) throw new SimAdminError(409, `the app is installed on ${account} already (installation ${inst.id})`);
    this.state.user(account);
    const repositoryIds = (repositories ?? []).map((n) => this.state.adminRepo(account, n).id);
    const inst: SimInstallation = {
      id: this.state.id(), account, selection: repositories ? 'selected' : 'all', repositoryIds, permissions, events: APP_EVENTS, createdAt: new Date().toISOString(),
    };
    this.state.installations.set(inst.id, inst);
    return inst;
  }

  /** An installation token, scoped as `POST /app/installations/{id}/access_tokens` scopes it. */
  issueToken(inst: SimInstallation, scope: { repositories?: string[]; repository_ids?: number[]; permissions?: Permissions } = {}): SimToken {
    const available = this.state.installationRepos(inst);
    let repositoryIds: number[] | null = null;
    if (scope.repositories || scope.repository_ids) {
      const byName = (scope.repositories ?? []).map((n) => available.find((r) => r.name.toLowerCase() === n.toLowerCase() || this.state.fullName(r).toLowerCase() === n.toLowerCase()));
      const byId = (scope.repository_ids ?? []).map((id) => available.find((r) => r.id === id));
      if ([...byName, ...byId].some((r) => !r)) throw unprocessable('There is at least one repository that does not exist or is not accessible to the parent installation.');
      repositoryIds = [...new Set([...byName, ...byId].map((r) => r!.id))];
    }
    const permissions = scope.permissions ?? inst.permissions;
    for (const [perm, level] of Object.entries(permissions)) {
      const granted = inst.permissions[perm];
      if (!granted || LEVEL[granted] < LEVEL[level]) throw unprocessable('The permissions requested are not granted to this installation.');
    }
    const token: SimToken = {
      token: `ghs_${crypto.randomBytes(27).toString('base64url').replace(/[-_]/g, 'x').slice(0, 36)}`,
      installationId: inst.id, expiresAt: Date.now() + TOKEN_LIFETIME_MS, repositoryIds, permissions,
    };
    this.state.tokens.set(token.token, token);
    return token;
  }

  /**
   * Checks `secret` (an installation token) against `repo` and the `needed` permissions (any
   * one): 401 Bad credentials when unknown or expired, 404 when the token does not cover the
   * repository (GitHub hides it), 403 when it lacks the permission.
   */
  checkToken(secret: string, repo: SimRepo, needed: Record<string, 'read' | 'write'>): SimToken {
    const token = this.state.tokens.get(secret);
    if (!token || token.expiresAt <= Date.now()) throw new GithubApiError(401, 'Bad credentials');
    const inst = this.state.installations.get(token.installationId);
    const covered = !!inst && this.state.installationFor(repo)?.id === inst.id && (!token.repositoryIds || token.repositoryIds.includes(repo.id));
    // Any installation token reads a public repository, as anyone may.
    if (!covered && !repo.private && Object.values(needed).every((l) => l === 'read')) return token;
    if (!covered) throw new GithubApiError(404, 'Not Found');
    const entries = Object.entries(needed);
    // Every installation token can read metadata.
    const has = (perm: string, level: 'read' | 'write') => (perm === 'metadata' && level === 'read') || (token.permissions[perm] !== undefined && LEVEL[token.permissions[perm]!] >= LEVEL[level]);
    if (entries.length && !entries.some(([p, l]) => has(p, l))) {
      throw new GithubApiError(403, 'Resource not accessible by integration', { 'x-accepted-github-permissions': entries.map(([p, l]) => `${p}=${l}`).join('; ') });
    }
    return token;
  }

  /**
   * Runs work that must not hold up an API answer (webhooks about refs the app changed itself):
   * `settle()` waits for it, so that close() does not cut a delivery off.
   */
  background(work: Promise<unknown>): void {
    const p = work.catch((err: Error) => this.schemaProblems.push(`background work failed: ${err.message}`)).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  async settle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  /** Sends a webhook about `repo` when the app is installed on it (GitHub sends none otherwise). */
  async sendForRepo(repo: SimRepo, build: (inst: SimInstallation) => Record<string, unknown>, name: string): Promise<Delivery | null> {
    const inst = this.state.installationFor(repo);
    if (!inst || !(inst.events.includes(this.validator.webhooks.webhooks[name].event) || name === 'installation-created')) return null;
    return this.webhooks.send(name, build(inst));
  }
}
