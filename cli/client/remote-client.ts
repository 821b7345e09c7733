import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { WebSocket } from 'ws';
import type { RunView } from '../../app/run-service.js';
import type { StopMode } from '../../app/scheduler/scheduler.js';
import type { JobRow, RunRow } from '../../app/store/store.js';
import { DstackError, type ErrorCode } from '../../shared/errors.js';
import { decodeLogFrame } from '../../shared/log-frame.js';
import { closeReason } from '../../shared/protocol.js';
import { referencedSecrets } from '../../shared/secrets.js';
import type { ServerConfig } from '../local/config-file.js';
import { dstackHome } from '../local/home.js';
import { SecretStore } from '../local/secret-store.js';
import { paint } from '../output/colors.js';
import type { LogPrinter } from '../output/log-printer.js';
import type { SourcePatch } from '../remote/source-patch.js';
import type { ArtifactInfo, ClientRun, DstackClient, JobEvent, LogSink, RunListQuery, SubmitRequest, TagInfo } from './dstack-client.js';
import { answerText, httpCall } from './http-call.js';

/** A run as the server's user API sends it (app/server/user-views.ts). */
interface WireRun {
  run: Omit<RunRow, 'executor' | 'isolation' | 'secrets' | 'source'> & { source: { repoUrl: string; commit: string; patch: boolean } | null };
  status: RunView['status'];
  jobs: JobRow[];
  tags: string[];
  events?: Record<string, JobEvent[]>;
}

type FollowMessage =
  | { type: 'log'; jobId: string; data: string }
  | ({ type: 'run' } & WireRun)
  | ({ type: 'end' } & WireRun)
  | { type: 'job'; job: JobRow }
  | { type: 'port'; jobId: string; port: number };

interface FollowHandlers {
  log(jobId: string, data: Buffer): void;
  /** A promise while the reader is behind: the socket is not read meanwhile. */
  backpressure(): Promise<void> | undefined;
  job?(job: JobRow, labels: Map<string, string>): void;
  port?(jobId: string, port: number, labels: Map<string, string>): void;
  /** Stops following: the socket is dropped and the promise rejects. */
  signal?: AbortSignal;
}

/** The longest one wait for a run's end asks the server for (it answers sooner when the run ends). */
const WAIT_SLICE_MS = 30_000;

/** Remote mode: every command is a request to a `dstack-app` server, with the user token saved by `dstack config`. */
export class RemoteClient implements DstackClient {
  readonly mode = 'remote';
  readonly url: string;
  private readonly token: string;
  private prepared: { root: string; source: Promise<SourcePatch> } | undefined;

  constructor(server: ServerConfig, private readonly env: NodeJS.ProcessEnv = process.env) {
    this.url = server.url.replace(/\/+$/, '');
    this.token = server.token;
  }

  /** `GET /api/user`: whose the token is; DSTACK_ERR_AUTH when the server refuses it. */
  async owner(): Promise<string> {
    return ((await this.json('GET', '/api/user')) as { owner: string }).owner;
  }

  async listRuns(query: RunListQuery): Promise<ClientRun[]> {
    const params = new URLSearchParams({ limit: String(query.limit) });
    if (query.live) params.set('live', '1');
    if (query.events) params.set('events', '1');
    if (query.after) params.set('after', `${query.after.submitted_at}:${query.after.name}`);
    const page = (await this.json('GET', `/api/runs?${params}`)) as { runs: WireRun[] };
    return page.runs.map(toView);
  }

  async getRun(name: string): Promise<ClientRun> {
    return toView((await this.json('GET', `/api/runs/${encodeURIComponent(name)}`)) as WireRun);
  }

  readLogs(name: string, sink: LogSink, opts: { follow: boolean }): Promise<RunView> {
    return this.follow(name, opts.follow, { log: (jobId, data) => sink.write(jobId, data), backpressure: () => sink.backpressure() });
  }

  async stop(name: string, mode: StopMode): Promise<void> {
    await this.json('POST', `/api/runs/${encodeURIComponent(name)}/stop`, { abort: mode === 'abort' });
  }

  async waitForEnd(name: string, ms: number): Promise<RunView | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const within = Math.max(0, Math.min(WAIT_SLICE_MS, deadline - Date.now()));
      const answer = (await this.json('GET', `/api/runs/${encodeURIComponent(name)}/end?within=${within}`)) as WireRun & { ended: boolean };
      if (answer.ended) return toView(answer);
      if (Date.now() >= deadline) return undefined;
    }
  }

  async tag(name: string, tag: string): Promise<{ moved?: string }> {
    return (await this.json('POST', `/api/runs/${encodeURIComponent(name)}/tag`, { tag })) as { moved?: string };
  }

  async untag(tag: string): Promise<void> {
    (await this.request('DELETE', `/api/tags/${encodeURIComponent(tag)}`)).resume();
  }

  async listTags(): Promise<TagInfo[]> {
    return (await this.json('GET', '/api/tags')) as TagInfo[];
  }

  async listArtifacts(ref: string): Promise<{ run: string; artifacts: ArtifactInfo[] }> {
    const answer = (await this.json('GET', `/api/runs/${encodeURIComponent(ref)}/artifacts`)) as { run: string; artifacts: (ArtifactInfo & { url: string })[] };
    return { run: answer.run, artifacts: answer.artifacts.map(({ url: _url, ...a }) => a) };
  }

  async openArtifact(run: string, artifact: ArtifactInfo): Promise<Readable> {
    return this.request('GET', `/api/runs/${encodeURIComponent(run)}/jobs/${encodeURIComponent(artifact.jobId)}/artifact?path=${encodeURIComponent(artifact.path)}`);
  }

  async pruneCache(root: string, workflow: string): Promise<number> {
    const { repoRemote } = await import('../remote/source-patch.js');
    const repo = withoutCredentials((await repoRemote(root)).repoUrl);
    const answer = (await this.json('DELETE', `/api/caches?${new URLSearchParams({ repo, workflow })}`)) as { deleted: number };
    return answer.deleted;
  }

  async newRunName(): Promise<string> {
    return ((await this.json('POST', '/api/run-names')) as { name: string }).name;
  }

  /** Sends the code (the newest pushed commit and one patch of the rest), then the run with the values of the secrets it uses. */
  async submit(request: SubmitRequest): Promise<RunView> {
    const prepared = this.prepared?.root === request.root ? this.prepared.source : undefined;
    if (prepared) this.prepared = undefined;
    else this.dropPrepared();
    const source = await (prepared ?? this.readSource(request.root));
    const patch = await nonEmpty(source.openPatch());
    let patchId: string | null = null;
    if (patch) {
      patchId = ((await this.answer(await this.request('POST', '/api/patches', { body: patch, type: 'application/octet-stream' }))) as { id: string }).id;
    }
    const stored = new SecretStore(dstackHome(this.env)).values();
    const secrets = Object.fromEntries(referencedSecrets(request.plan).map((name) => [name, stored[name] ?? '']));
    const repoUrl = withoutCredentials(source.repoUrl);
    const view = toView(
      (await this.json('POST', '/api/runs', {
        name: request.runName,
        repo: repoUrl,
        workflow: request.workflow,
        args: request.args,
        plan: request.plan,
        source: { repoUrl, commit: source.commit, patch: patchId },
        secrets,
      })) as WireRun,
    );
    return view;
  }

  /** Streams the run's output from the server until it ends; jobs that fail before printing anything say why. */
  attach(name: string, printer: LogPrinter, colors = false, signal?: AbortSignal): Promise<RunView> {
    const color = paint(colors);
    const printed = new Set<string>();
    return this.follow(name, true, {
      log: (jobId, data) => {
        printed.add(jobId);
        printer.write(jobId, data);
      },
      backpressure: () => printer.backpressure(),
      job: (job) => {
        if (job.status === 'failed' && job.reason && job.exit_code === null && !printed.has(job.id)) printer.line(color('red', `${job.workflow}: ${job.reason}`));
      },
      port: (jobId, port, labels) => printer.line(color('cyan', `${labels.get(jobId) ?? jobId}: port ${port} is open on the agent`)),
      signal,
    });
  }

  /** The run's logs over a WebSocket, from the start of each job's log, then live until the end. */
  private follow(name: string, follow: boolean, handlers: FollowHandlers): Promise<RunView> {
    const url = `${this.url.replace(/^http/, 'ws')}/api/runs/${encodeURIComponent(name)}/logs?follow=${follow ? 1 : 0}&frames=binary`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } });
      handlers.signal?.addEventListener('abort', () => {
        reject(new DstackError('DSTACK_ERR_SERVER', `stopped following ${name}; 'dstack ps ${name}' shows how it ends`));
        ws.terminate();
      });
      let labels = new Map<string, string>();
      let end: RunView | undefined;
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(this.answerError(res.statusCode ?? 0, body)));
      });
      ws.on('error', (err) => reject(this.unreachable(err)));
      const log = (jobId: string, data: Buffer) => {
        handlers.log(jobId, data);
        const wait = handlers.backpressure();
        if (wait) {
          ws.pause();
          void wait.then(() => ws.resume());
        }
      };
      ws.on('message', (raw: Buffer, isBinary) => {
        if (isBinary) {
          const frame = decodeLogFrame(raw);
          if ('error' in frame) ws.close(1008, closeReason(frame.error));
          else log(frame.jobId, frame.data);
          return;
        }
        const message = JSON.parse(raw.toString()) as FollowMessage;
        if (message.type === 'run') labels = new Map(message.jobs.map((j) => [j.id, j.workflow]));
        // A server older than binary frames sends the log as JSON.
        else if (message.type === 'log') log(message.jobId, Buffer.from(message.data, 'base64'));
        else if (message.type === 'job') handlers.job?.(message.job, labels);
        else if (message.type === 'port') handlers.port?.(message.jobId, message.port, labels);
        else if (message.type === 'end') end = toView(message);
      });
      ws.on('close', (code, reason) => {
        if (end) resolve(end);
        else reject(new DstackError('DSTACK_ERR_SERVER', `the server at ${this.url} closed the log stream of ${name} (${code}${reason.length ? ` ${reason.toString()}` : ''}); follow it again with 'dstack logs ${name} -f'`));
      });
    });
  }

  private async json(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.answer(await this.request(method, path, body === undefined ? {} : { body: JSON.stringify(body), type: 'application/json' }));
  }

  /** A 2xx answer's JSON (undefined for 204). */
  private async answer(res: IncomingMessage): Promise<unknown> {
    if (res.statusCode === 204) {
      res.resume();
      return undefined;
    }
    let text: string;
    try {
      text = await answerText(res);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new DstackError('DSTACK_ERR_SERVER', `the server at ${this.url} cut its answer off (${why}); try again, or check \`dstack config\``, { cause: err });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new DstackError('DSTACK_ERR_SERVER', `the server at ${this.url} answered ${res.statusCode} with something that is not JSON (${text.trim().slice(0, 80) || 'nothing'}); check \`dstack config\``);
    }
  }

  /** One request; a refused token is DSTACK_ERR_AUTH, an unreachable server or an error answer DSTACK_ERR_SERVER (or the answer's own code). */
  private async request(method: string, path: string, opts: { body?: string | Readable; type?: string } = {}): Promise<IncomingMessage> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (opts.type) headers['content-type'] = opts.type;
    let res: IncomingMessage;
    try {
      res = await httpCall(new URL(`${this.url}${path}`), method, headers, opts.body, undefined, this.closing.signal);
    } catch (err) {
      throw this.unreachable(err);
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    // An error answer is a line of JSON, or a proxy's page: a little of it is enough to say why.
    throw this.answerError(status, await answerText(res, 64 * 1024).catch(() => ''));
  }

  private unreachable(err: unknown): DstackError {
    // node:http's errors carry the code themselves.
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    return new DstackError('DSTACK_ERR_SERVER', `cannot reach the server at ${this.url}: ${why}; check \`dstack config\``, { cause: err });
  }

  private answerError(status: number, text: string): DstackError {
    if (status === 401) {
      return new DstackError(
        'DSTACK_ERR_AUTH',
        `the server at ${this.url} refused the token (401); create a user token with 'dstack-app token create --owner NAME --user' and save it with 'dstack config --url ${this.url} --token TOKEN'`,
      );
    }
    let body: { error?: string; code?: string } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // Not the user API's JSON (a proxy's page, another server): say what came back.
    }
    if (body.code && /^DSTACK_ERR_[A-Z_]+$/.test(body.code) && body.error) return new DstackError(body.code as ErrorCode, body.error);
    return new DstackError('DSTACK_ERR_SERVER', `the server at ${this.url} answered ${status}: ${body.error ?? (text.trim().slice(0, 200) || 'no message')}; check \`dstack config\``);
  }

  async sweep(): Promise<void> {}

  /** Reads the code a submit of `root` sends now, so git works while the run is being planned. */
  prepare(root: string): void {
    const source = this.readSource(root);
    // Its failure is the submit's to report.
    source.catch(() => {});
    this.prepared = { root, source };
  }

  private async readSource(root: string): Promise<SourcePatch> {
    const { sourcePatch } = await import('../remote/source-patch.js');
    return sourcePatch(root);
  }

  /** Cuts the requests still in flight (a stop the server never answered): they must not keep the command from exiting. */
  close(): void {
    this.dropPrepared();
    this.closing.abort();
  }

  private readonly closing = new AbortController();

  /** Discards code read for a submit that never came (the run was refused before it was sent). */
  private dropPrepared(): void {
    void this.prepared?.source.then((s) => s.discard(), () => {});
    this.prepared = undefined;
  }
}

/** A server's run as the commands' RunView (what the API never sends — secrets, the patch's key — is null). */
function toView(w: WireRun): ClientRun {
  return {
    run: { ...w.run, executor: null, isolation: null, secrets: null, source: null },
    status: w.status,
    jobs: w.jobs,
    tags: w.tags,
    ...(w.events ? { events: w.events } : {}),
  };
}

/** A remote URL without a user name or password: those are the user's, not for the server or its agents. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url; // scp-like `git@host:path`, or a path
  }
}

/** The stream again, or undefined when it turns out empty (an empty patch is no patch). */
async function nonEmpty(stream: Readable): Promise<Readable | undefined> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  if (first.done) return undefined;
  return Readable.from(
    (async function* () {
      yield first.value;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield next.value;
      }
    })(),
  );
}
