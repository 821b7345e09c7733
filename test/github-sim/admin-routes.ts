import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkAssetSignature } from './handlers/release-handlers.js';
import type { SimAdmin } from './sim-admin.js';
import type { SimCore } from './sim-core.js';
import { SimAdminError } from './sim-errors.js';

type Params = Record<string, string>;
type AdminRoute = [method: string, pattern: string, run: (p: Params, body: any, query: URLSearchParams) => Promise<unknown> | unknown];

async function readBody(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new SimAdminError(400, 'the body must be JSON');
  }
}

function need(body: any, ...keys: string[]): void {
  const missing = keys.filter((k) => body[k] === undefined || body[k] === null || body[k] === '');
  if (missing.length) throw new SimAdminError(400, `missing ${missing.join(', ')}`);
}

/** The admin API under /_sim (see README.md): what tests and the playground drive the sim with. */
export function adminRoutes(core: SimCore, admin: SimAdmin, info: () => Record<string, unknown>): AdminRoute[] {
  return [
    ['GET', '/_sim', () => info()],
    ['PUT', '/_sim/webhook', (_p, b) => {
      need(b, 'url');
      core.webhooks.url = b.url;
      return { url: b.url };
    }],
    ['POST', '/_sim/repos', (_p, b) => {
      need(b, 'owner', 'name', 'path');
      return admin.createRepo({ owner: b.owner, name: b.name, path: b.path, private: b.private, forkOf: b.fork_of });
    }],
    ['POST', '/_sim/repos/:owner/:repo/push', (p, b) => {
      need(b, 'path');
      return admin.push({ owner: p.owner!, repo: p.repo!, path: b.path, refspecs: b.refspecs, user: b.user, force: b.force });
    }],
    ['PUT', '/_sim/repos/:owner/:repo/collaborators/:user', (p, b) => {
      need(b, 'permission');
      admin.setPermission(p.owner!, p.repo!, p.user!, b.permission);
      return { user: p.user, permission: b.permission };
    }],
    ['POST', '/_sim/installations', (_p, b) => {
      need(b, 'account');
      return admin.createInstallation({ account: b.account, repositories: b.repositories, permissions: b.permissions, sender: b.sender });
    }],
    ['POST', '/_sim/installations/:id/tokens', (p, b) => admin.createToken(Number(p.id), b)],
    ['POST', '/_sim/tokens/expire', (_p, b) => {
      need(b, 'token');
      admin.expireToken(b.token);
      return { expired: true };
    }],
    ['POST', '/_sim/repos/:owner/:repo/issues', (p, b) => {
      need(b, 'title');
      return admin.createIssue({ owner: p.owner!, repo: p.repo!, title: b.title, user: b.user, body: b.body });
    }],
    ['POST', '/_sim/repos/:owner/:repo/pulls', (p, b) => {
      need(b, 'head', 'title');
      return admin.createPull({ owner: p.owner!, repo: p.repo!, head: b.head, base: b.base, title: b.title, body: b.body, user: b.user, fork_owner: b.fork_owner });
    }],
    ['POST', '/_sim/repos/:owner/:repo/issues/:number/comments', (p, b) => {
      need(b, 'user', 'body');
      return admin.comment({ owner: p.owner!, repo: p.repo!, number: Number(p.number), user: b.user, body: b.body, permission: b.permission });
    }],
    ['PATCH', '/_sim/repos/:owner/:repo/issues/comments/:id', (p, b) => {
      need(b, 'body');
      return admin.editComment({ owner: p.owner!, repo: p.repo!, id: Number(p.id), body: b.body });
    }],
    ['POST', '/_sim/check-runs/:id/rerequest', (p, b) => admin.rerequestCheckRun(Number(p.id), b.user)],
    ['POST', '/_sim/check-runs/:id/requested-action', (p, b) => {
      need(b, 'identifier');
      return admin.requestAction(Number(p.id), b.identifier, b.user);
    }],
    ['GET', '/_sim/deliveries', () => admin.deliveries()],
    ['POST', '/_sim/deliveries/:id/redeliver', (p) => admin.redeliver(p.id!)],
    ['POST', '/_sim/faults', (_p, b) => {
      need(b, 'rate', 'kinds');
      core.faults.set({ rate: b.rate, kinds: b.kinds, seed: b.seed, operations: b.operations, retryAfter: b.retry_after });
      return { ok: true };
    }],
    ['POST', '/_sim/faults/next', (_p, b) => {
      need(b, 'kind');
      core.faults.failNext(b.kind, b.times ?? 1, b.operations, b.retry_after);
      return { ok: true };
    }],
    ['GET', '/_sim/faults', () => ({ injected: core.faults.injected })],
    ['DELETE', '/_sim/faults', () => (core.faults.clear(), { ok: true })],
    ['POST', '/_sim/break', (_p, b) => {
      need(b, 'operation_id');
      core.validator.operation(b.operation_id);
      core.breakers.set(b.operation_id, (body) => {
        for (const k of b.remove ?? []) delete body[k];
        return Object.assign(body, b.set ?? {});
      });
      return { ok: true };
    }],
    ['DELETE', '/_sim/break', () => (core.breakers.clear(), { ok: true })],
    ['GET', '/_sim/schema-problems', () => ({ problems: core.schemaProblems })],
    ['DELETE', '/_sim/schema-problems', () => ({ problems: core.schemaProblems.splice(0) })],
    ['GET', '/_sim/requests', () => ({ counts: core.log.counts(), log: core.log.entries })],
    ['DELETE', '/_sim/requests', () => (core.log.clear(), { ok: true })],
    ['GET', '/_sim/repos/:owner/:repo/check-runs', (p) => admin.checkRuns(p.owner!, p.repo!)],
    ['GET', '/_sim/repos/:owner/:repo/comments', (p) => admin.comments(p.owner!, p.repo!)],
    ['GET', '/_sim/repos/:owner/:repo/releases', (p) => admin.releases(p.owner!, p.repo!)],
  ];
}

function matchPattern(pattern: string, path: string): Params | null {
  const a = pattern.split('/');
  const b = path.split('/');
  if (a.length !== b.length) return null;
  const params: Params = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.startsWith(':')) params[a[i]!.slice(1)] = decodeURIComponent(b[i]!);
    else if (a[i] !== b[i]) return null;
  }
  return params;
}

/** Answers one /_sim request: JSON in, JSON out, 400/404/409 with `{message}` for misuse. */
export async function handleAdmin(routes: AdminRoute[], req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  const send = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  for (const [method, pattern, run] of routes) {
    const params = matchPattern(pattern, path);
    if (!params || method !== req.method) continue;
    try {
      const body = await readBody(req);
      return send(200, (await run(params, body, query)) ?? {});
    } catch (err) {
      if (err instanceof SimAdminError) return send(err.status, { message: err.message });
      if (err instanceof RangeError) return send(400, { message: err.message });
      if ((err as { status?: number }).status === 422) return send(422, { message: (err as Error).message });
      throw err;
    }
  }
  send(404, { message: `no admin route ${req.method} ${path}: see test/github-sim/README.md` });
}

/** The bytes behind a presigned asset URL (where `Accept: application/octet-stream` redirects to). */
export function serveAssetStorage(core: SimCore, res: ServerResponse, id: number, query: URLSearchParams): void {
  const asset = core.state.assets.get(id);
  if (!asset || !checkAssetSignature(core, id, Number(query.get('expires')), query.get('signature') ?? '')) {
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>Request has expired or the signature does not match</Message></Error>');
    return;
  }
  res.writeHead(200, { 'content-type': asset.contentType, 'content-length': String(asset.size), 'content-disposition': `attachment; filename=${asset.name}` });
  fs.createReadStream(asset.file).pipe(res);
}
