import type http from 'node:http';
import { Transform, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { DstackError, isDstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import { referencedSecrets } from '../../shared/secrets.js';
import type { RunView } from '../run-service.js';
import type { JobRow, RunCursor } from '../store/store.js';
import { bodyLimit } from './body-limit.js';
import { checkInput, wholeNumber } from './check-input.js';
import { LogFollower } from './log-follower.js';
import type { ServerContext } from './server.js';
import { parseSubmitBody, RUN_NAME } from './submit-body.js';
import { ownerRepo, publicRun } from './user-views.js';

export interface UserRoutes {
  router: Router;
  /** Takes a WebSocket upgrade that is the CLI's (log following); false when it is not. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

/** The largest patch `dstack run` may send (`git diff --binary` of what is not pushed). */
const MAX_PATCH_BYTES = 1 << 30;
/** The largest JSON body (a run's plan with its secrets is the largest the CLI sends). */
const MAX_JSON_BYTES = 16 << 20;
/** How long a run name handed out by POST /api/run-names is kept from others. */
const NAME_HELD_MS = 10 * 60_000;
/** The longest a `GET /api/runs/:name/end` waits. */
const MAX_WAIT_MS = 60_000;

const LOGS_PATH = /^\/api\/runs\/([^/]+)\/logs$/;

/** Bodies and query values as they are sent, never coerced: a wrong type is a 400, not a guess. */
const stopBody = z.strictObject({ abort: z.boolean().optional() });
const tagBody = z.strictObject({ tag: z.string() });
const runsQuery = z.looseObject({ limit: wholeNumber.optional(), after: z.string().optional(), live: z.string().optional(), events: z.string().optional() });
const endQuery = z.looseObject({ within: wholeNumber.optional() });
const cachesQuery = z.looseObject({ repo: z.string().min(1, 'required'), workflow: z.string().min(1, 'required') });

/**
 * The CLI's API (remote mode): a user token's owner submits, lists, follows, stops and tags its own
 * runs only. Another owner's run or tag is answered as if it did not exist (404), never 403. Errors
 * are `{error, code}` with the code of shared/errors.ts; large things (patches, artifacts, logs)
 * are streamed, never held whole.
 */
export function userRoutes(ctx: ServerContext): UserRoutes {
  const { service } = ctx.state;
  const router = Router();
  const user = ctx.requireToken('user');
  const parseJson = express.json({ limit: MAX_JSON_BYTES });
  const jsonLimit = bodyLimit(MAX_JSON_BYTES, 'the body', 'send less');
  const json = (req: Request, res: Response, next: NextFunction) => jsonLimit(req, res, () => parseJson(req, res, next));
  const owner = (req: Request) => req.principal!.owner;
  const ownRun = (req: Request, name = String(req.params.name)) => service.view(name, owner(req));
  /** Requests waiting for a run's end, by run: one listener on the run service serves them all. */
  const waiters = new Map<string, Set<(view: RunView) => void>>();
  /** Names handed out and not yet submitted: two clients asking at once never get the same one. */
  const held = new Map<string, { owner: string; until: number }>();

  // Who a user token belongs to: what `dstack config --url --token` checks before saving them.
  router.get('/api/user', user, (req, res) => {
    res.json({ owner: owner(req) });
  });

  router.post('/api/run-names', user, (req, res) => {
    const now = Date.now();
    for (const [name, h] of held) if (h.until < now) held.delete(name);
    let name = service.newRunName();
    while (held.has(name)) name = service.newRunName();
    held.set(name, { owner: owner(req), until: now + NAME_HELD_MS });
    res.json({ name });
  });

  // The run's uncommitted work, `git diff --binary` as the body: stored as this owner's, by id.
  router.post('/api/patches', user, bodyLimit(MAX_PATCH_BYTES, 'the patch', 'commit and push large files instead'), async (req, res, next) => {
    let bytes = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        done(bytes > MAX_PATCH_BYTES ? new DstackError('DSTACK_ERR_USAGE', `the patch is over ${MAX_PATCH_BYTES} bytes; commit and push large files instead`) : null, chunk);
      },
    });
    req.on('error', (err) => limit.destroy(err));
    try {
      const id = await service.putPatch(owner(req), req.pipe(limit));
      res.status(201).json({ id });
    } catch (err) {
      next(err);
      res.on('finish', () => req.socket.destroy());
    }
  });

  router.post('/api/runs', user, json, (req, res) => {
    const body = parseSubmitBody(req.body);
    const who = owner(req);
    const hold = held.get(body.name);
    if (service.findRun(body.name) || (hold && hold.owner !== who && hold.until > Date.now())) {
      throw new DstackError('DSTACK_ERR_USAGE', `run name '${body.name}' is taken; ask for another with POST /api/run-names`);
    }
    for (const wf of body.plan) for (const dep of wf.dependsOn) if (dep.tag) service.taggedJob(dep.workflow, dep.tag, who);
    const values: Record<string, string> = {};
    for (const name of new Set(body.plan.flatMap((wf) => referencedSecrets(wf)))) {
      const value = body.secrets[name];
      if (value === undefined) throw new DstackError('DSTACK_ERR_SECRET_UNKNOWN', `the run refers to secret '${name}' but sent no value for it; 'dstack secrets add ${name}'`);
      values[name] = value;
    }
    let patch: string | null = null;
    if (body.source.patch !== null) {
      patch = service.takePatch(who, body.source.patch, body.name) ?? null;
      if (!patch) throw new DstackError('DSTACK_ERR_USAGE', `unknown patch '${body.source.patch}'; upload it with POST /api/patches first`);
    }
    held.delete(body.name);
    const view = service.submit({
      repo: ownerRepo(who, body.repo),
      workflow: body.workflow,
      args: body.args,
      runName: body.name,
      plan: body.plan,
      executor: null,
      owner: who,
      source: { repoUrl: body.source.repoUrl, commit: body.source.commit, patch },
      secrets: Object.keys(values).length > 0 ? ctx.sealer.seal(values) : null,
    });
    ctx.log(`run ${view.run.name} (${view.run.workflow}) submitted by ${who}`);
    res.status(201).json(publicRun(service, view));
  });

  // A page of runs, newest first: ?live=1 only unfinished ones, ?limit=N, ?after=SUBMITTED_AT:NAME, ?events=1.
  router.get('/api/runs', user, (req, res) => {
    const query = checkInput(runsQuery, req.query, 'query');
    const limit = query.limit ?? 50;
    if (limit < 1 || limit > 500) throw new DstackError('DSTACK_ERR_USAGE', 'limit must be a whole number from 1 to 500');
    const runs = service.listRuns({ owner: owner(req), live: query.live === '1', limit, after: cursor(query.after) });
    res.json({
      runs: runs.map((v) => publicRun(service, v, query.events === '1')),
      next: runs.length === limit ? `${runs.at(-1)!.run.submitted_at}:${runs.at(-1)!.run.name}` : null,
    });
  });

  router.get('/api/runs/:name', user, (req, res) => {
    res.json(publicRun(service, ownRun(req), true));
  });

  // Resolves once the run has ended, or after ?within=MS (at most a minute) with `ended: false`.
  router.get('/api/runs/:name/end', user, (req, res) => {
    const name = ownRun(req).run.name;
    const within = Math.min(checkInput(endQuery, req.query, 'query').within ?? MAX_WAIT_MS, MAX_WAIT_MS);
    let timer: NodeJS.Timeout | undefined;
    const forget = () => {
      clearTimeout(timer);
      waiters.get(name)?.delete(onEnd);
      if (waiters.get(name)?.size === 0) waiters.delete(name);
    };
    const answer = (view: RunView) => {
      forget();
      res.json({ ended: isFinal(view.status), ...publicRun(service, view) });
    };
    const onEnd = (view: RunView) => answer(view);
    const now = service.view(name);
    if (isFinal(now.status)) return answer(now);
    waiters.set(name, (waiters.get(name) ?? new Set()).add(onEnd));
    timer = setTimeout(() => answer(service.view(name)), within);
    res.on('close', forget);
  });

  router.post('/api/runs/:name/stop', user, json, (req, res) => {
    const { abort } = checkInput(stopBody, req.body ?? {}, 'stop');
    const view = ownRun(req);
    if (!isFinal(view.status)) ctx.scheduler.stop(view.run.name, abort ? 'abort' : 'stop');
    res.json(publicRun(service, service.view(view.run.name)));
  });

  router.post('/api/runs/:name/tag', user, json, (req, res) => {
    const { tag } = checkInput(tagBody, req.body ?? {}, 'tag');
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(tag)) throw new DstackError('DSTACK_ERR_USAGE', `invalid tag '${tag}': letters, digits, '_', '.' and '-'`);
    res.json(service.tag(ownRun(req).run.name, tag));
  });

  router.get('/api/tags', user, (req, res) => {
    res.json(service.listTags(owner(req)).map((t) => ({ name: t.name, run_name: t.run_name, workflow: t.workflow, created_at: t.created_at })));
  });

  router.delete('/api/tags/:tag', user, (req, res) => {
    service.untag(String(req.params.tag), owner(req));
    res.status(204).end();
  });

  // RUN or :TAG (the colon URL-encoded or not).
  router.get('/api/runs/:ref/artifacts', user, (req, res) => {
    const view = service.resolveRunRef(String(req.params.ref), owner(req));
    const name = view.run.name;
    res.json({
      run: name,
      artifacts: service.artifactsOfRun(name).map((a) => ({
        workflow: a.workflow,
        jobId: a.job_id,
        path: a.path,
        files: a.files,
        bytes: a.bytes,
        url: `/api/runs/${encodeURIComponent(name)}/jobs/${encodeURIComponent(a.job_id)}/artifact?path=${encodeURIComponent(a.path)}`,
      })),
    });
  });

  router.get('/api/runs/:name/jobs/:job/artifact', user, async (req, res, next) => {
    const name = ownRun(req).run.name;
    const artifact = service.artifactsOfRun(name).find((a) => a.job_id === req.params.job && a.path === req.query.path);
    if (!artifact) {
      res.status(404).json({ error: `run ${name} has no artifact '${String(req.query.path)}' of job ${String(req.params.job)}`, code: 'DSTACK_ERR_ARCHIVE' });
      return;
    }
    res.type('application/x-tar');
    try {
      await pipeline(service.openArchive(artifact.archive), res);
    } catch (err) {
      // Cut the response, so a download is never taken as whole.
      if (res.headersSent) res.destroy();
      else next(err);
    }
  });

  router.delete('/api/caches', user, (req, res) => {
    const query = cachesQuery.safeParse(req.query);
    if (!query.success) throw new DstackError('DSTACK_ERR_USAGE', 'repo and workflow are required, once each: DELETE /api/caches?repo=URL&workflow=NAME');
    const { repo, workflow } = query.data;
    res.json({ deleted: service.pruneCache(ownerRepo(owner(req), repo), workflow) });
  });

  router.use('/api', (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (ctx.storage.failed(err)) err = ctx.storage.error();
    if (isDstackError(err)) {
      res.status(err.code === 'DSTACK_ERR_NO_SPACE' ? 503 : /_UNKNOWN$/.test(err.code) ? 404 : 400).json({ error: err.message, code: err.code });
    } else if ((err as { type?: string }).type === 'entity.parse.failed') {
      res.status(400).json({ error: `the body is not JSON: ${(err as Error).message}`, code: 'DSTACK_ERR_USAGE' });
    } else if ((err as { type?: string }).type === 'entity.too.large') {
      res.status(413).json({ error: 'the body is too large', code: 'DSTACK_ERR_USAGE' });
    } else {
      ctx.log(`user API error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      res.status(500).json({ error: `internal error: ${err instanceof Error ? err.message : String(err)}` });
    }
  });

  // Log following and waits for an end: one listener of each kind on the run service for all of them.
  // A follower only listens: what a client sends is not read, so it may send next to nothing.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  const followers = new Set<LogFollower>();
  const onLog = (jobId: string, data: Buffer, offset: number) => {
    for (const f of followers) if (f.has(jobId)) f.logged(jobId, data, offset);
  };
  const onJob = (job: JobRow) => {
    for (const f of followers) if (f.has(job.id)) f.jobChanged(job);
    const waiting = waiters.get(job.run_name);
    if (!waiting || !isFinal(job.status)) return;
    const view = service.view(job.run_name);
    if (isFinal(view.status)) for (const answer of [...waiting]) answer(view);
  };
  const onPort = (jobId: string, port: number) => {
    for (const f of followers) if (f.has(jobId)) f.port(jobId, port);
  };
  service.on('log', onLog);
  service.on('job', onJob);
  service.on('port', onPort);

  const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = LOGS_PATH.exec(url.pathname);
    if (!match) return false;
    const principal = ctx.tokens.verify(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]);
    if (!principal || principal.kind !== 'user') {
      refuse(socket, 401, 'Unauthorized', { error: 'a valid user token is required: Authorization: Bearer TOKEN' });
      return true;
    }
    let name: string;
    try {
      name = decodeURIComponent(match[1]!);
      service.view(name, principal.owner);
    } catch (err) {
      if (!isDstackError(err)) throw err;
      refuse(socket, 404, 'Not Found', { error: err.message, code: err.code });
      return true;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const follower = new LogFollower(ws, service, name, url.searchParams.get('follow') !== '0', () => followers.delete(follower), url.searchParams.get('frames') === 'binary');
      followers.add(follower);
    });
    return true;
  };

  return {
    router,
    upgrade,
    close: () => {
      service.off('log', onLog);
      service.off('job', onJob);
      service.off('port', onPort);
      for (const f of followers) f.close();
      followers.clear();
      wss.close();
    },
  };
}

/** `SUBMITTED_AT:NAME` of the last run of the previous page. */
function cursor(value: unknown): RunCursor | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+):([a-z]+-[a-z]+-\d+)$/.exec(String(value));
  if (!m || !RUN_NAME.test(m[2]!)) throw new DstackError('DSTACK_ERR_USAGE', `invalid cursor '${String(value)}': use the 'next' of the previous page`);
  return { submitted_at: Number(m[1]), name: m[2]! };
}

function refuse(socket: Duplex, status: number, text: string, body: object): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(body)}`);
}
