import http from 'node:http';
import { Readable } from 'node:stream';

/**
 * One HTTP request from the CLI with node:http, resolving with the answer once its head arrives.
 * Not the global fetch: that loads undici and web streams, over 100 ms of CPU on each command's
 * start on a small machine, for a CLI whose commands make one or two requests. node:https is
 * loaded only for an https URL. Connections are kept alive between a command's requests; the
 * global agent unrefs an idle one, so it never keeps the command from exiting.
 */
export async function httpCall(url: URL, method: string, headers: Record<string, string>, body?: string | Readable): Promise<http.IncomingMessage> {
  const lib = url.protocol === 'https:' ? (await import('node:https')).default : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method, headers }, resolve);
    req.on('error', reject);
    if (body instanceof Readable) {
      // A body that fails (the git diff it comes from) fails the request with its own error.
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    } else req.end(body);
  });
}

/** The whole of a (small, JSON) answer as text; rejects when the connection is cut before its end. */
export async function answerText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  if (!res.complete) throw new Error('the answer was cut off');
  return Buffer.concat(chunks).toString();
}
