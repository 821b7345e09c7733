import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * Serves the repositories under `root` over git's smart HTTP (git http-backend as CGI) on
 * loopback, answering 401 unless the request carries `Authorization: Basic` with `token` (when
 * one is given: without, the repositories are public).
 */
export async function gitHttpServer(root: string, token?: string): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  const backend = path.join(execFileSync('git', ['--exec-path']).toString().trim(), 'git-http-backend');
  const expected = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (token !== undefined && req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const url = new URL(req.url!, 'http://x');
    const cgi = spawn(backend, [], {
      env: {
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method!,
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: 'agent',
        REMOTE_ADDR: '127.0.0.1',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_HTTP_MAX_REQUEST_BUFFER: '100M',
      },
    });
    req.pipe(cgi.stdin);
    void relayCgi(cgi.stdout, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Relays a CGI program's output (headers, a blank line, then the body) as the HTTP response;
 * resolves with the status once the body has ended.
 */
export function relayCgi(out: NodeJS.ReadableStream, res: http.ServerResponse): Promise<number> {
  let head = Buffer.alloc(0);
  let headed = false;
  let status = 200;
  out.on('data', (chunk: Buffer) => {
    if (headed) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headed = true;
    for (const line of head.subarray(0, end).toString().split('\r\n')) {
      const [k, ...v] = line.split(':');
      if (k!.toLowerCase() === 'status') status = Number(v.join(':').trim().split(' ')[0]);
      else res.setHeader(k!, v.join(':').trim());
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  return new Promise((resolve) =>
    out.on('end', () => {
      res.end();
      resolve(status);
    }),
  );
}
