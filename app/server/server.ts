import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { JOB_STATUSES } from '../../shared/job-status.js';
import { Tokens, type Principal, type TokenKind } from '../auth/tokens.js';
import { openState, type State } from '../state.js';
import { Counter, Gauge, Histogram, Registry } from './metrics.js';

export interface DstackServer {
  http: http.Server;
  app: express.Express;
  state: State;
  tokens: Tokens;
  metrics: ReturnType<typeof serverMetrics>;
  /** Authenticates requests to routes added with it; 401 with nothing else for a missing, wrong or revoked token. */
  requireToken(kind: TokenKind): (req: Request, res: Response, next: NextFunction) => void;
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
      new Histogram('dstack_dispatch_latency_seconds', 'From a job becoming ready to its agent starting it.', [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    ),
    logBytes: registry.add(new Counter('dstack_log_bytes_total', 'Bytes of job logs stored.')),
    requests: registry.add(new Counter('dstack_http_requests_total', 'HTTP requests by route and status code.')),
  };
}

/**
 * The server (`dstack-app`): the same run service, store, logs and archives as local mode, under
 * a data folder, behind HTTP. Agents and the CLI authenticate with tokens (see app/auth/tokens.ts).
 */
export function createServer(dataDir: string): DstackServer {
  const state = openState(dataDir);
  const tokens = new Tokens(state.store);
  const metrics = serverMetrics(state);
  state.service.on('log', (_job, data) => metrics.logBytes.inc({}, data.length));
  const app = express();
  app.disable('x-powered-by');
  // Counted by route pattern, not by URL, so run names do not make a series each.
  app.use((req, res, next) => {
    res.on('finish', () => metrics.requests.inc({ route: req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched', code: String(res.statusCode) }));
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
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
  // Who a user token belongs to: what `dstack config --url --token` checks before saving them.
  app.get('/api/user', requireToken('user'), (req, res) => {
    res.json({ owner: req.principal!.owner });
  });

  const server = http.createServer(app);
  return {
    http: server,
    app,
    state,
    tokens,
    metrics,
    requireToken,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(server.address() as AddressInfo));
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          state.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
