import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { DstackError, type ErrorCode } from '../shared/errors.js';

/** A GET that fails before its answer starts (the server restarting) is tried again after these delays. */
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000];

/** How long a request may go without a byte moving either way. */
const IDLE_TIMEOUT_MS = 120_000;

/** The most of an error answer read (a one-line JSON `{error, code}`): nothing bigger is kept. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * The job routes of the server (app/server/job-routes.ts) as one job on an agent uses them: the
 * patch and input archives streamed down, artifacts and caches streamed up, each request with the
 * job's current token. Nothing is held whole in memory: bodies move as streams, with backpressure.
 * Errors say which request failed and what the server said.
 */
export class JobHttp {
  private readonly base: string;

  /**
   * `token` is read at each request: the server hands a long job fresh ones. `idleTimeoutMs`: how
   * long a request may go without a byte moving either way.
   */
  constructor(
    base: string,
    private readonly jobId: string,
    private readonly token: () => string,
    private readonly idleTimeoutMs = IDLE_TIMEOUT_MS,
  ) {
    this.base = base.replace(/\/+$/, '');
  }

  /** `/api/jobs/ID/rest`. */
  jobPath(rest: string): string {
    return `/api/jobs/${encodeURIComponent(this.jobId)}/${rest}`;
  }

  /** GETs JSON. */
  async json<T>(pathname: string): Promise<T> {
    const res = await this.get(pathname);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    if (!res.complete) throw this.error('GET', pathname, 'the answer was cut off');
    try {
      return JSON.parse(Buffer.concat(chunks).toString()) as T;
    } catch {
      throw this.error('GET', pathname, 'the answer is not JSON');
    }
  }

  /**
   * GETs a stream. The Readable is returned at once (what ArchiveRef.open() needs) and the request
   * starts when it is first read, so a patch asked for before a long clone does not sit idle on the
   * server meanwhile. A body cut short is an error, never taken as whole.
   */
  download(pathname: string): Readable {
    let res: http.IncomingMessage | undefined;
    let started = false;
    const out = new Readable({
      read: () => {
        if (res) {
          res.resume();
          return;
        }
        if (started) return;
        started = true;
        this.get(pathname).then(
          (r) => {
            res = r;
            r.on('data', (d: Buffer) => {
              if (!out.push(d)) r.pause();
            });
            r.on('end', () => (r.complete ? out.push(null) : out.destroy(this.error('GET', pathname, 'the download was cut off'))));
            r.on('error', (err) => out.destroy(this.error('GET', pathname, `the download was cut off (${err.message})`)));
            r.on('close', () => {
              if (!r.complete) out.destroy(this.error('GET', pathname, 'the download was cut off'));
            });
          },
          (err: unknown) => out.destroy(err as Error),
        );
      },
      destroy: (err, callback) => {
        res?.destroy();
        callback(err);
      },
    });
    return out;
  }

  /**
   * PUTs a stream (chunked, with backpressure) and resolves on 2xx. A refusal rejects with the
   * server's own code and message (e.g. DSTACK_ERR_ARCHIVE_REFUSED), so the job says why; the rest
   * of the body is then not sent.
   */
  upload(pathname: string, body: Readable): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let answered = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (err) {
          // Rejected first, so the caller sees this error before the producer's (its pipe broke).
          reject(err);
          body.unpipe(req);
          body.destroy();
          req.destroy();
        } else resolve();
      };
      const req = this.request('PUT', pathname, { 'content-type': 'application/x-tar' });
      req.on('response', (res) => {
        answered = true;
        if (res.statusCode! >= 200 && res.statusCode! < 300) {
          res.resume();
          res.on('end', () => settle());
          res.on('error', () => settle(this.error('PUT', pathname, 'the answer was cut off')));
          return;
        }
        void errorOf(res).then((answer) => settle(this.refused('PUT', pathname, res.statusCode!, answer)));
      });
      // A server that refuses early closes the connection while the body still flows: its answer,
      // already read, is what counts.
      req.on('error', (err) => {
        if (!answered) settle(this.error('PUT', pathname, unreachable(err)));
      });
      body.on('error', (err) => settle(err));
      body.pipe(req);
    });
  }

  private request(method: string, pathname: string, headers: Record<string, string> = {}): http.ClientRequest {
    const url = new URL(this.base + pathname);
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, { method, headers: { authorization: `Bearer ${this.token()}`, ...headers } });
    // A connection that went quiet (half-open after a network change) would hold the job in
    // `downloading` or `uploading` for ever: no byte either way for this long ends the request.
    req.setTimeout(this.idleTimeoutMs, () => {
      const quiet = new Error(`nothing moved for ${this.idleTimeoutMs / 1000} s`);
      req.destroy(quiet);
      // Once the answer has begun, its stream carries the error on (a download, an upload's answer).
      (req as { res?: http.IncomingMessage }).res?.destroy(quiet);
    });
    return req;
  }

  /** A 2xx answer to a GET, tried again while the server cannot be reached or answers 502-504. */
  private async get(pathname: string): Promise<http.IncomingMessage> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await new Promise<http.IncomingMessage | Error>((resolve) => {
        const req = this.request('GET', pathname);
        req.on('response', resolve);
        req.on('error', (err) => resolve(this.error('GET', pathname, unreachable(err))));
        req.end();
      });
      const retry = attempt < RETRY_DELAYS_MS.length && (outcome instanceof Error || [502, 503, 504].includes(outcome.statusCode!));
      if (retry) {
        if (!(outcome instanceof Error)) outcome.resume();
        await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
        continue;
      }
      if (outcome instanceof Error) throw outcome;
      if (outcome.statusCode! >= 200 && outcome.statusCode! < 300) return outcome;
      throw this.refused('GET', pathname, outcome.statusCode!, await errorOf(outcome));
    }
  }

  private refused(method: string, pathname: string, status: number, answer: { error?: string; code?: string }): DstackError {
    // The server's own code, when it gave one, is the error: it already says what to do.
    if (answer.error && answer.code && /^DSTACK_ERR_[A-Z_]+$/.test(answer.code)) return new DstackError(answer.code as ErrorCode, answer.error);
    const why = answer.error ?? `HTTP ${status}`;
    return this.error(method, pathname, `the server answered ${status}: ${why}`);
  }

  private error(method: string, pathname: string, why: string): DstackError {
    return new DstackError('DSTACK_ERR_SERVER', `${method} ${this.base}${pathname.split('?')[0]}: ${why}`);
  }
}

/** A short reason for a request that got no answer. */
function unreachable(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (!code && err.message.startsWith('nothing moved')) return `the server stopped answering (${err.message})`;
  return `the server cannot be reached (${code ?? err.message})`;
}

/** The `{error, code}` of an error answer, read up to a bound. */
async function errorOf(res: http.IncomingMessage): Promise<{ error?: string; code?: string }> {
  let text = '';
  try {
    for await (const chunk of res) {
      if (text.length < MAX_ERROR_BODY) text += (chunk as Buffer).toString();
    }
  } catch {
    // A cut answer: what arrived is still worth showing.
  }
  try {
    const value = JSON.parse(text) as { error?: unknown; code?: unknown };
    return { ...(typeof value.error === 'string' ? { error: value.error } : {}), ...(typeof value.code === 'string' ? { code: value.code } : {}) };
  } catch {
    return text.trim() ? { error: text.trim().slice(0, 500) } : {};
  }
}
