import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FaultKind, FaultRule } from './fault-injector.js';
import { SimAdmin } from './sim-admin.js';
import { SimCore } from './sim-core.js';
import { SimSchemaError } from './sim-errors.js';
import { createSimServer } from './sim-server.js';

export interface GithubSimOptions {
  /** Where the app takes webhooks (e.g. `http://127.0.0.1:3000/api/github/webhooks`); settable later. */
  webhookUrl?: string;
  /** The sim's git repositories, assets and key; a temporary folder (removed by close) by default. */
  dataDir?: string;
  port?: number;
  host?: string;
}

export type GithubSim = Awaited<ReturnType<typeof startGithubSim>>;

/**
 * Starts the fake GitHub on loopback (port 0 by default) with a new app (id, RSA key pair,
 * webhook secret). `close()` throws a SimSchemaError when a response or webhook broke GitHub's
 * schema and the test did not take the problems with `takeSchemaProblems()`.
 */
export async function startGithubSim(options: GithubSimOptions = {}) {
  const ownDir = !options.dataDir;
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'github-sim-'));
  const core = new SimCore({ dataDir, webhookUrl: options.webhookUrl ?? null, base: '' });
  const admin = new SimAdmin(core);
  const info = () => ({ api_url: apiUrl, app_id: core.app.id, private_key_path: core.privateKeyPath, webhook_secret: core.webhooks.secret, webhook_url: core.webhooks.url });
  const server = createSimServer(core, admin, info);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = `${options.host ?? '127.0.0.1'}:${address.port}`;
  const baseUrl = `http://${host}`;
  const apiUrl = `${baseUrl}/api/v3`;
  core.objects.base = baseUrl;
  const repoOf = (o: { owner: string; repo: string }) => [o.owner, o.repo] as const;

  return {
    /** `http://127.0.0.1:PORT/api/v3`: Octokit's `baseUrl`. */
    apiUrl,
    /** `127.0.0.1:PORT`: what `GHE_HOST` takes (with `GHE_PROTOCOL=http`). */
    host,
    baseUrl,
    appId: core.app.id,
    appSlug: core.app.slug,
    botLogin: core.objects.botLogin(),
    privateKeyPath: core.privateKeyPath,
    privateKey: fs.readFileSync(core.privateKeyPath, 'utf8'),
    webhookSecret: core.webhooks.secret,
    dataDir,
    /** Probot's variables for `dstack-app` against this sim. */
    env(): Record<string, string> {
      return { APP_ID: String(core.app.id), PRIVATE_KEY_PATH: core.privateKeyPath, WEBHOOK_SECRET: core.webhooks.secret, GHE_HOST: host, GHE_PROTOCOL: 'http' };
    },
    setWebhookUrl(url: string | null): void {
      core.webhooks.url = url;
    },
    createRepo: (o: { owner: string; name: string; path: string; private?: boolean; forkOf?: string }) => admin.createRepo(o),
    push: (o: { owner: string; repo: string; path: string; refspecs?: string[]; user?: string; force?: boolean }) => admin.push(o),
    setPermission: (o: { owner: string; repo: string; user: string; permission: string }) => admin.setPermission(o.owner, o.repo, o.user, o.permission),
    createInstallation: (o: { account: string; repositories?: string[]; permissions?: Record<string, 'read' | 'write'>; sender?: string }) => admin.createInstallation(o),
    createToken: (installationId: number, scope?: { repositories?: string[]; repository_ids?: number[]; permissions?: Record<string, 'read' | 'write'> }) => admin.createToken(installationId, scope),
    expireToken: (token: string) => admin.expireToken(token),
    createIssue: (o: { owner: string; repo: string; title: string; user?: string; body?: string }) => admin.createIssue(o),
    createPull: (o: { owner: string; repo: string; head: string; base?: string; title: string; body?: string; user?: string; forkOwner?: string }) => admin.createPull({ ...o, fork_owner: o.forkOwner }),
    comment: (o: { owner: string; repo: string; number: number; user: string; body: string; permission?: string }) => admin.comment(o),
    editComment: (o: { owner: string; repo: string; id: number; body: string }) => admin.editComment(o),
    rerequestCheckRun: (id: number, user?: string) => admin.rerequestCheckRun(id, user),
    requestAction: (id: number, identifier: string, user?: string) => admin.requestAction(id, identifier, user),
    redeliver: (id: string) => admin.redeliver(id),
    deliveries: () => admin.deliveries(),
    checkRuns: (o: { owner: string; repo: string }) => admin.checkRuns(...repoOf(o)),
    comments: (o: { owner: string; repo: string }) => admin.comments(...repoOf(o)),
    releases: (o: { owner: string; repo: string }) => admin.releases(...repoOf(o)),
    faults: {
      set: (rule: FaultRule | null) => core.faults.set(rule),
      failNext: (kind: FaultKind, times = 1, operations?: string[], retryAfter?: number) => core.faults.failNext(kind, times, operations, retryAfter),
      clear: () => core.faults.clear(),
      injected: () => [...core.faults.injected],
    },
    requests: {
      count: (operationIdOrRoute: string) => core.log.count(operationIdOrRoute),
      counts: () => core.log.counts(),
      log: () => [...core.log.entries],
      clear: () => core.log.clear(),
    },
    /** Changes every 2xx JSON body of `operationId` before validation: to see that a broken response fails. */
    breakResponses(operationId: string, change: (body: any) => unknown): void {
      core.validator.operation(operationId);
      core.breakers.set(operationId, change);
    },
    unbreakResponses: () => core.breakers.clear(),
    /** The schema problems seen so far, which close() will then not throw for. */
    takeSchemaProblems: () => core.schemaProblems.splice(0),
    /** Waits for webhooks sent in the background (about refs the app changed through the API). */
    settle: () => core.settle(),
    async close(): Promise<void> {
      await core.settle();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
      if (core.schemaProblems.length) throw new SimSchemaError(core.schemaProblems.splice(0));
    },
  };
}
