import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { SimCore } from './sim-core.js';
import type { SimRepo, SimToken } from './sim-state.js';

export interface RestContext {
  sim: SimCore;
  operationId: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body, validated against the operation's request schema; undefined for uploads. */
  body: any;
  req: IncomingMessage;
  /** Set on repository routes: the repository of `{owner}/{repo}`, already checked against the token. */
  repo: SimRepo;
  /** The installation token the request carried (repository routes). */
  token: SimToken | null;
}

export interface RestResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A binary body (asset bytes, raw contents): not JSON, so only its status is checked. */
  stream?: Readable;
  mediaType?: string;
}

/**
 * One REST operation. `auth: 'jwt'` routes take the app's JWT; `auth: 'repo'` routes take an
 * installation token that covers `{owner}/{repo}` with any one of `permissions` (GitHub accepts
 * e.g. issues or pull_requests write for a PR comment). Public repositories are readable without
 * a token, as on GitHub.
 */
export interface RestHandler {
  auth: 'jwt' | 'repo';
  permissions?: Record<string, 'read' | 'write'>;
  handle(ctx: RestContext): Promise<RestResult>;
}

export type RestHandlers = Record<string, RestHandler>;
