import { execFileSync, spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { SimCore } from './sim-core.js';
import { GithubApiError } from './sim-errors.js';
import type { SimRepo } from './sim-state.js';
import { sendPush } from './send-push.js';
import { relayCgi } from '../helpers/git-http.js';

const BACKEND = path.join(execFileSync('git', ['--exec-path']).toString().trim(), 'git-http-backend');

function deny(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', ...(status === 401 ? { 'www-authenticate': 'Basic realm="GitHub"' } : {}) }).end(`${message}\n`);
}

/** The password of `Authorization: Basic` (`x-access-token:TOKEN`, as GitHub takes installation tokens). */
function basicPassword(req: IncomingMessage): string | null {
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/**
 * Serves `/{owner}/{repo}.git/...` over git's smart HTTP with `git http-backend` as CGI.
 * Installation tokens only: contents read to fetch, contents write to push. After a push, one
 * `push` webhook per changed ref, sent by the pushing app's bot as GitHub does.
 */
export async function serveGit(core: SimCore, req: IncomingMessage, res: ServerResponse, repo: SimRepo, rest: string): Promise<void> {
  const url = new URL(req.url!, 'http://x');
  const pushing = rest === '/git-receive-pack' || url.searchParams.get('service') === 'git-receive-pack';
  const password = basicPassword(req);
  const log = (status: number) => core.log.add({ method: req.method ?? 'GET', path: url.pathname, route: `git ${pushing ? 'receive-pack' : 'upload-pack'}`, operationId: null, status, fault: null });
  if (!password) {
    log(401);
    req.resume();
    return deny(res, 401, 'Authentication required: use x-access-token:INSTALLATION_TOKEN');
  }
  try {
    core.checkToken(password, repo, { contents: pushing ? 'write' : 'read' });
  } catch (err) {
    if (!(err instanceof GithubApiError)) throw err;
    log(err.status === 404 ? 404 : err.status === 403 ? 403 : 401);
    req.resume();
    return deny(res, err.status === 404 ? 404 : err.status === 403 ? 403 : 401, err.status === 404 ? 'Repository not found.' : err.status === 403 ? 'Permission denied: the token lacks contents write' : 'Invalid username or token.');
  }
  const before = rest === '/git-receive-pack' ? await core.store(repo).refs() : null;
  const cgi = spawn(BACKEND, [], {
    env: {
      GIT_PROJECT_ROOT: path.dirname(path.dirname(repo.gitDir)),
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${repo.owner}/${path.basename(repo.gitDir)}${rest}`,
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method!,
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: 'x-access-token',
      REMOTE_ADDR: '127.0.0.1',
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_HTTP_MAX_REQUEST_BUFFER: '1000M',
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    },
  });
  req.pipe(cgi.stdin);
  const [status] = await Promise.all([relayCgi(cgi.stdout, res), new Promise<void>((resolve) => cgi.on('close', () => resolve()))]);
  log(status);
  if (before) await sendPush(core, repo, before, core.objects.botLogin());
}
