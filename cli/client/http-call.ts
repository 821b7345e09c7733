import http from 'node:http';
import { Readable } from 'node:stream';

/** How long a request may go without a byte moving either way (a server that stopped answering). */
export const IDLE_TIMEOUT_MS = 120_000;

/** The most of an answer read as text: JSON answers are far smaller, and an error page is cut. */
const MAX_TEXT_BYTES = 64 * 1024 * 1024;

/**
 * One HTTP request from the CLI with node:http, resolving with the answer once its head arrives.
 * Not the global fetch: that loads undici and web streams, over 100 ms of CPU on each command's
 * start on a small machine, for a CLI whose commands make one or two requests. node:https is
 * loaded only for an https URL. Connections are kept alive between a command's requests; the
 * global agent unrefs an idle one, so it never keeps the command from exiting. A request (or its
 * answer, read later) that goes `idleTimeoutMs` without a byte either way fails with that reason;
 * one whose `signal` aborts fails at once.
 */
export async function httpCall(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body?: string | Readable,
  idleTimeoutMs = IDLE_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<http.IncomingMessage> {
  const lib = url.protocol === 'https:' ? (await import('node:https')).default : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method, headers, ...(signal ? { signal } : {}) }, resolve);
    req.on('error', reject);
    req.setTimeout(idleTimeoutMs, () => {
      const quiet = new Error(`the server sent nothing for ${idleTimeoutMs / 1000} s`);
      req.destroy(quiet);
      // Once the answer has begun, its stream carries the error on (a download being read).
      (req as { res?: http.IncomingMessage }).res?.destroy(quiet);
    });
    if (body instanceof Readable) {
      // A body that fails (the git diff it comes from) fails the request with its own error.
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    } else req.end(body);
  });
}

/**
 * An answer as text, up to `max` bytes (the rest is read and dropped); rejects when the connection
 * is cut before its end.
 */
export async function answerText(res: http.IncomingMessage, max = MAX_TEXT_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res) {
    if (bytes >= max) continue;
    chunks.push(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  if (!res.complete) throw new Error('the answer was cut off');
  return Buffer.concat(chunks).subarray(0, max).toString();
}
