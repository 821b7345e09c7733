import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { AGENT_SOCKET_PATH } from '../../agent/connection.js';
import { DstackError } from '../../shared/errors.js';
import { JOB_STATUSES } from '../../shared/job-status.js';
import { JobTokens } from '../auth/job-tokens.js';
import { Sealer } from '../auth/sealed.js';
import { loadServerKey } from '../auth/server-key.js';
import { Tokens, type Principal, type TokenKind } from '../auth/tokens.js';
import { AgentHub } from '../hub/agent-hub.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { openState, type State } from '../state.js';
import { StorageHealth } from '../storage-health.js';
import { GitCredentials } from './git-credentials.js';
import { jobRoutes } from './job-routes.js';
import { Counter, Gauge, Histogram, Registry } from './metrics.js';
import { userRoutes } from './user-routes.js';
import { runPage } from '../github/run-page.js';

export interface ServerOptions {
  dataDir: string;
  /** An agent silent this long is lost: its jobs end `aborted`, or wait again when interruptible (default 30 s). */
  agentLostAfterMs?: number;
  /** An offer not accepted within this long goes back to the queue (default 5 s). */
  acceptWithinMs?: number;
  /** The server's URL as agents reach it, for their job requests; by default the one each agent connected to. */
  publicUrl?: string;
  /** Where the server says what happens to agents (default: stderr). */
  log?: (line: string) => void;
}

/** What the routes share: the state, the scheduler over every run, and the server's keys. */
export interface ServerContext {
  state: State;
  scheduler: Scheduler;
  tokens: Tokens;
  jobTokens: JobTokens;
  sealer: Sealer;
  hub: AgentHub;
  /** Where agents get a token to fetch a run's code with, when a front door (the GitHub App) provides one. */
  gitCredentials: GitCredentials;
  metrics: ReturnType<typeof serverMetrics>;
  /** Whether the data folder takes writes: what cannot be stored for lack of space is answered 503. */
  storage: StorageHealth;
  /** Authenticates requests to routes added with it; 401 with nothing else for a missing, wrong or revoked token. */
  requireToken(kind: TokenKind): (req: Request, res: Response, next: NextFunction) => void;
  log(line: string): void;
}

export interface DstackServer extends ServerContext {
  http: http.Server;
  app: express.Express;
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

function serverMetrics(state: State) {
  const registry = new Registry();
  let agents = 0;
  return {
    registry,
    setAgentsConnected: (n: number) => (agents = n),
    agents: registry.add(new Gauge('dstack_agents_connected', 'Runner agents connected now.', () => [{ value: agents }])),
    jobs: registry.add(
      new Gauge('dstack_jobs', 'Jobs by status.', () => {
        const counts = state.service.jobCounts();
        return JOB_STATUSES.map((status) => ({ labels: { status }, value: counts[status] ?? 0 }));
      }),
    ),
    dispatch: registry.add(
      new Histogram('dstack_dispatch_latency_seconds', 'From offering a job to an agent to the agent accepting it.', [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    ),
    logBytes: registry.add(new Counter('dstack_log_bytes_total', 'Bytes of job logs stored.')),
    requests: registry.add(new Counter('dstack_http_requests_total', 'HTTP requests by route and status code.')),
  };
}

/**
 * The server (`dstack-app`): the same run service, store, logs and archives as local mode, under
 * a data folder, behind HTTP. Agents and the CLI authenticate with tokens (see app/auth/tokens.ts).
 */
export function createServer(options: ServerOptions): DstackServer {
  const state = openState(options.dataDir);
  const tokens = new Tokens(state.store);
  const metrics = serverMetrics(state);
  const key = loadServerKey(options.dataDir);
  const jobTokens = new JobTokens(key);
  const sealer = new Sealer(key);
  const log = options.log ?? ((line: string) => process.stderr.write(`dstack-app: ${line}\n`));
  // Offers that were out when a previous server stopped were never started: they wait again.
  for (const job of state.service.jobsOnAgents()) if (job.status === 'submitted') state.service.releaseResources(job.id);
  const scheduler = new Scheduler(state.service);
  // Patches uploaded for runs that were never submitted: gone after a day, looked for hourly.
  const prunePatches = () => state.service.prunePatches(24 * 60 * 60 * 1000);
  prunePatches();
  const patchTimer = setInterval(prunePatches, 60 * 60 * 1000).unref();
  const lostAfterMs = options.agentLostAfterMs ?? 30_000;
  const storage = new StorageHealth(options.dataDir);
  const hub = new AgentHub({
    storage,
    service: state.service,
    scheduler,
    tokens,
    jobTokens,
    sealer,
    publicUrl: options.publicUrl,
    acceptWithinMs: options.acceptWithinMs ?? 5000,
    lostAfterMs,
    heartbeatMs: Math.min(10_000, Math.max(100, Math.floor(lostAfterMs / 3))),
    observeDispatch: (seconds) => metrics.dispatch.observe(seconds),
    onAgentsChanged: (n) => metrics.setAgentsConnected(n),
    log,
  });
  state.service.on('log', (_job, data) => metrics.logBytes.inc({}, data.length));
  const app = express();
  app.disable('x-powered-by');
  // Counted by route pattern, not by URL, so run names do not make a series each.
  app.use((req, res, next) => {
    res.on('finish', () => metrics.requests.inc({ route: req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched', code: String(res.statusCode) }));
    next();
  });
  // Load balancers look at the status: 503 while the data folder is full (what the server holds
  // can still be read, but nothing new stored), with the reason in the body.
  app.get('/healthz', (_req, res) => {
    const problem = storage.recentCheck();
    if (!problem) {
      res.json({ ok: true });
      return;
    }
    const noSpace = problem instanceof DstackError;
    res.status(503).json({ ok: false, degraded: noSpace ? 'no_space' : 'not_writable', error: problem.message, ...(noSpace ? { code: problem.code } : {}) });
  });
  app.get('/metrics', (_req, res) => {
    res.type('text/plain; version=0.0.4').send(metrics.registry.text());
  });

  const requireToken = (kind: TokenKind) => (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? '';
    const principal = tokens.verify(/^Bearer (\S+)$/.exec(header)?.[1]);
    if (!principal || principal.kind !== kind) {
      res.status(401).json({ error: `a valid ${kind} token is required: Authorization: Bearer TOKEN` });
      return;
    }
    req.principal = principal;
    next();
  };
  const gitCredentials = new GitCredentials();
  app.use(jobRoutes(state.service, jobTokens, gitCredentials, storage));
  const context: ServerContext = { state, scheduler, tokens, jobTokens, sealer, hub, gitCredentials, metrics, storage, requireToken, log };
  const users = userRoutes(context);
  app.use(users.router);
  app.use(runPage(context, key, options.publicUrl, () => server.address()));

  const server = http.createServer(app);
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    // Nothing a client sends in an upgrade request may take the server down: what throws is a 400.
    try {
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      if (pathname === AGENT_SOCKET_PATH) return hub.upgrade(req, socket, head);
      if (users.upgrade(req, socket, head)) return;
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    } catch (err) {
      log(`upgrade request refused: ${err instanceof Error ? err.message : String(err)}`);
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    }
  });
  return {
    ...context,
    http: server,
    app,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(server.address() as AddressInfo));
      }),
    close: () =>
      new Promise((resolve) => {
        clearInterval(patchTimer);
        hub.close();
        users.close();
        scheduler.close();
        server.close(() => {
          state.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
