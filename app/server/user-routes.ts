import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { Router } from 'express';
import type { ServerContext } from './server.js';

export interface UserRoutes {
  router: Router;
  /** Takes a WebSocket upgrade that is the CLI's (log following); false when it is not. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

/** The CLI's API: a user token's owner runs, lists, follows, stops and tags its own runs only. */
export function userRoutes(ctx: ServerContext): UserRoutes {
  const router = Router();
  // Who a user token belongs to: what `dstack config --url --token` checks before saving them.
  router.get('/api/user', ctx.requireToken('user'), (req, res) => {
    res.json({ owner: req.principal!.owner });
  });
  return { router, upgrade: () => false, close: () => {} };
}
