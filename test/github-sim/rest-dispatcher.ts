import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifyAppJwt } from './app-jwt.js';
import { OpenapiRoutes } from './openapi-routes.js';
import type { RestContext, RestHandlers, RestResult } from './rest-handler.js';
import type { SimCore } from './sim-core.js';
import { GithubApiError } from './sim-errors.js';
import type { SimToken } from './sim-state.js';

const UPLOAD_OPERATION = 'repos/upload-release-asset';
const MAX_JSON_BODY = 25 * 1024 * 1024;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BODY) throw new GithubApiError(413, 'Payload too big');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new GithubApiError(400, 'Problems parsing JSON');
  }
}

/** `token X` / `Bearer X` → X. */
function credential(req: IncomingMessage): string | null {
  const m = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

/**
 * Serves the REST API (under /api/v3) and uploads (under /api/uploads) from the operations of
 * openapi-subset.json: route, auth, request validation, injected faults, the handler, then the
 * response checked against the operation's schema before it is sent.
 */
export class RestDispatcher {
  private readonly routes: OpenapiRoutes;

  constructor(
    private readonly core: SimCore,
    private readonly handlers: RestHandlers,
  ) {
    this.routes = new OpenapiRoutes(core.validator.rest.paths);
    for (const id of Object.keys(handlers)) core.validator.operation(id);
  }

  async handle(req: IncomingMessage, res: ServerResponse, rawPath: string, uploads: boolean): Promise<void> {
    const method = req.method ?? 'GET';
    const match = this.routes.match(method, rawPath);
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const operationId = match?.operationId ?? null;
    let fault: string | null = null;
    let result: RestResult;
    try {
      const handler = operationId ? this.handlers[operationId] : undefined;
      if (!match || !handler || (operationId === UPLOAD_OPERATION) !== uploads) {
        req.resume();
        result = { status: 501, body: { message: `github-sim does not implement ${method} ${uploads ? '/api/uploads' : '/api/v3'}${rawPath}${match ? ` (${match.operationId})` : ''}`, documentation_url: 'test/github-sim/README.md' } };
        this.send(res, null, result, method);
        this.core.log.add({ method, path: rawPath, route: match ? `${match.method} ${match.template}` : null, operationId, status: 501, fault: null });
        return;
      }
      const ctx: RestContext = { sim: this.core, operationId: match.operationId, params: match.params, query, body: undefined, req, repo: undefined as any, token: null as SimToken | null };
      this.authenticate(ctx, handler.auth, handler.permissions ?? {});
      const injected = this.core.faults.draw(match.operationId, ctx.token?.installationId ?? null);
      if (injected) {
        fault = injected.message;
        throw injected;
      }
      if (operationId !== UPLOAD_OPERATION) {
        ctx.body = await readJson(req);
        const problem = this.core.validator.validateRequest(match.operationId, ctx.body);
        if (problem) throw new GithubApiError(422, `Invalid request.\n\n${problem}`);
      }
      result = await handler.handle(ctx);
    } catch (err) {
      if (!(err instanceof GithubApiError)) throw err;
      req.resume();
      result = { status: err.status, body: err.body(), headers: err.headers };
    }
    const status = this.send(res, operationId, result, method);
    this.core.log.add({ method, path: rawPath, route: match ? `${match.method} ${match.template}` : null, operationId, status, fault: fault ? String(result.status) : null });
  }

  private authenticate(ctx: RestContext, auth: 'jwt' | 'repo', permissions: Record<string, 'read' | 'write'>): void {
    const secret = credential(ctx.req);
    if (auth === 'jwt') {
      if (!secret) throw new GithubApiError(401, 'A JSON web token could not be decoded');
      verifyAppJwt(secret, this.core.publicKey, this.core.app.id, this.core.app.clientId);
      return;
    }
    const { owner, repo: name } = ctx.params as { owner: string; repo: string };
    const repo = this.core.state.repo(owner, name);
    ctx.repo = repo;
    if (!secret) {
      const writes = ctx.req.method !== 'GET' || Object.values(permissions).includes('write');
      if (repo.private) throw new GithubApiError(404, 'Not Found');
      if (writes) throw new GithubApiError(401, 'Requires authentication');
      return;
    }
    if (secret.split('.').length === 3) throw new GithubApiError(403, 'Resource not accessible by integration');
    ctx.token = this.core.checkToken(secret, repo, permissions);
  }

  /** Checks the response against the schema (500 with the reason when it breaks it), then sends it. */
  private send(res: ServerResponse, operationId: string | null, result: RestResult, method: string): number {
    let { status, body } = result;
    const breaker = operationId ? this.core.breakers.get(operationId) : undefined;
    if (breaker && status < 300 && body !== undefined) body = breaker(structuredClone(body));
    if (operationId) {
      const problem = this.core.validator.validateResponse(operationId, status, result.stream ? undefined : body, result.stream ? (result.mediaType ?? 'application/octet-stream') : 'application/json');
      if (problem) {
        const message = `github-sim: the ${status} response of ${operationId} breaks GitHub's schema: ${problem}`;
        this.core.schemaProblems.push(message);
        result.stream?.destroy();
        result = { status: 500, body: { message, documentation_url: 'test/github-sim/README.md' } };
        status = 500;
        body = result.body;
      }
    }
    const headers: Record<string, string> = {
      'x-github-media-type': 'github.v3; format=json',
      'x-github-request-id': `SIM:${this.core.log.entries.length + 1}`,
      'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-used': '1',
      'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 3600), 'x-ratelimit-resource': 'core',
      ...result.headers,
    };
    if (result.stream) {
      res.writeHead(status, { 'content-type': result.mediaType ?? 'application/octet-stream', ...headers });
      result.stream.pipe(res);
      return status;
    }
    if (body === undefined || status === 204 || method === 'HEAD') {
      res.writeHead(status, headers).end();
      return status;
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
    return status;
  }
}
