import http from 'node:http';
import { adminRoutes, handleAdmin, serveAssetStorage } from './admin-routes.js';
import { serveGit } from './git-smart-http.js';
import { appHandlers } from './handlers/app-handlers.js';
import { checkHandlers } from './handlers/check-handlers.js';
import { gitRefHandlers } from './handlers/git-ref-handlers.js';
import { issueHandlers } from './handlers/issue-handlers.js';
import { releaseHandlers } from './handlers/release-handlers.js';
import { repoHandlers } from './handlers/repo-handlers.js';
import { RestDispatcher } from './rest-dispatcher.js';
import type { SimAdmin } from './sim-admin.js';
import type { SimCore } from './sim-core.js';

export const HANDLERS = { ...appHandlers, ...repoHandlers, ...issueHandlers, ...checkHandlers, ...releaseHandlers, ...gitRefHandlers };

/**
 * One HTTP server for everything, laid out as GitHub Enterprise Server: the REST API under
 * /api/v3, uploads under /api/uploads, git at /{owner}/{repo}.git, plus the sim's /_sim admin API
 * and its asset storage.
 */
export function createSimServer(core: SimCore, admin: SimAdmin, info: () => Record<string, unknown>): http.Server {
  const rest = new RestDispatcher(core, HANDLERS);
  const routes = adminRoutes(core, admin, info);
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    // The raw path: `{path}` and `{ref}` parameters keep their %2F until the route is matched.
    const rawPath = (req.url ?? '/').split('?')[0]!;
    const work = (async () => {
      if (rawPath.startsWith('/api/v3/') || rawPath === '/api/v3') return rest.handle(req, res, rawPath.slice('/api/v3'.length) || '/', false);
      if (rawPath.startsWith('/api/uploads/')) return rest.handle(req, res, rawPath.slice('/api/uploads'.length), true);
      const storage = /^\/_sim\/storage\/assets\/(\d+)$/.exec(url.pathname);
      if (storage && req.method === 'GET') return serveAssetStorage(core, res, Number(storage[1]), url.searchParams);
      if (url.pathname === '/_sim' || url.pathname.startsWith('/_sim/')) return handleAdmin(routes, req, res, url.pathname, url.searchParams);
      const git = /^\/([^/]+)\/([^/]+?)\.git(\/.*)$/.exec(url.pathname);
      const repo = git && core.state.findRepo(git[1]!, git[2]!);
      if (repo) return serveGit(core, req, res, repo, git![3]!);
      req.resume();
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `github-sim serves /api/v3, /api/uploads, /_sim and /{owner}/{repo}.git, not ${url.pathname}` }));
    })();
    work.catch((err: Error) => {
      // A bug of the sim: answer 500 and keep it, so that the test sees it.
      core.schemaProblems.push(`internal error on ${req.method} ${url.pathname}: ${err.stack ?? err.message}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `github-sim internal error: ${err.message}` }));
    });
  });
}
