import path from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { isFinal, type JobStatus } from '../shared/job-status.js';
import { LOG_WINDOW_CHUNKS, type AgentMessage, type AppMessage } from '../shared/protocol.js';
import type { RepoMirrors } from './checkout/repo-mirrors.js';
import type { ArchiveRef, JobIO } from './job-io.js';
import { JobHttp } from './job-http.js';
import { JobRunner, type Isolation, type StopMode } from './job-runner.js';
import type { LogChunk } from './log-streamer.js';
import type { RunAs } from './pty-process.js';
import { LogSpool } from './log-spool.js';

type Offer = Extract<AppMessage, { type: 'offer' }>;
type StatusMessage = Extract<AgentMessage, { type: 'status' }>;


/** What a job needs of the agent that runs it. */
export interface RemoteJobContext {
  /** Sends on the agent's socket; false when it is not open (the job keeps what must not be lost). */
  send(message: AgentMessage): boolean;
  workDir: string;
  mirrors: RepoMirrors;
  isolation: Isolation;
  /** Labels the job's containers, so those a killed agent left behind can be found. */
  owner: string;
  docker: () => Promise<Docker>;
  graceSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** Host jobs run as this user (`--run-as`). */
  runAs?: RunAs;
  /** The job is over for this agent: the server recorded its end, or it was dropped. */
  gone(job: RemoteJob): void;
  /** Its end, once, for the agent's output. */
  ended(job: RemoteJob, status: JobStatus, reason: string | null): void;
}

/**
 * One job on this agent, from the offer until the server has recorded its end: its JobRunner,
 * its JobIO over HTTP (code, archives) and the socket (statuses, logs, ports), and its ordered
 * sender. Log chunks go into a LogSpool on disk first and out in `seq` order from it, a window at
 * a time; after a reconnect they go again from the server's ack. The latest status follows the
 * chunks before it, so the final one comes after the whole log, and is sent again after each
 * reconnect until the server acknowledges it with `final`.
 */
export class RemoteJob {
  readonly id: string;
  state: 'offered' | 'running' | 'ended' = 'offered';
  private token: string;
  private readonly http: JobHttp;
  private spool: LogSpool | undefined;
  /** The chunk being pushed, while `log` sends it. */
  private latest: LogChunk | undefined;
  private runner: JobRunner | undefined;
  /** The highest seq acknowledged, pushed, and sent on the current connection. */
  private acked: number;
  private pushed: number;
  private sent: number;
  private status: StatusMessage | undefined;
  private statusSent = false;
  /** Whether the current connection may carry this job's messages (after `start`, or the welcome that kept it). */
  private ready = false;
  private dropped = false;
  private readonly ports = new Set<number>();

  constructor(private readonly offer: Offer, private readonly gpus: number[], private readonly ctx: RemoteJobContext) {
    this.id = offer.jobId;
    this.token = offer.api.token;
    this.http = new JobHttp(offer.api.url, offer.jobId, () => this.token);
    this.acked = this.pushed = this.sent = offer.firstLogSeq - 1;
  }

  /** Its entry in the hello's `running`: a started job is the agent's until the server records its end. */
  get held(): { jobId: string; acked: number } | undefined {
    return this.state === 'offered' || this.dropped ? undefined : { jobId: this.id, acked: this.acked };
  }

  /** `start`: runs it now. */
  start(): void {
    if (this.state !== 'offered' || this.dropped) return;
    this.state = 'running';
    this.ready = true;
    this.spool = new LogSpool(path.join(this.ctx.workDir, 'spool', encodeURIComponent(this.id)));
    const runner = new JobRunner(
      { jobId: this.id, runName: this.offer.runName, workflow: this.offer.workflow, gpus: this.gpus, secrets: this.offer.secrets, firstLogSeq: this.offer.firstLogSeq },
      this.io(),
      {
        workRoot: path.join(this.ctx.workDir, 'jobs'),
        graceSeconds: this.ctx.graceSeconds,
        isolation: this.ctx.isolation,
        owner: this.ctx.owner,
        docker: this.ctx.docker,
        env: this.ctx.env,
        runAs: this.ctx.runAs,
      },
    );
    this.runner = runner;
    void runner.run().then(
      () => this.runnerDone(),
      (err: unknown) => {
        // The runner reports its own failures; this is one of ours, and still the job's end.
        this.setStatus('aborted', { reason: `infrastructure error: ${err instanceof Error ? err.message : String(err)}` });
        this.runnerDone();
      },
    );
  }

  stop(mode: StopMode): void {
    this.runner?.stop(mode);
  }

  /** The server no longer counts the job as this agent's (`welcome.forget`, a `cancel`): kill it and say nothing more of it. */
  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.ready = false;
    this.spool?.close();
    if (this.runner && this.state === 'running') this.runner.stop('abort');
    else this.ctx.gone(this);
  }

  freshToken(token: string): void {
    this.token = token;
  }

  /** The socket closed: nothing more goes out until the next welcome keeps the job. */
  disconnected(): void {
    this.ready = false;
  }

  /** A new connection's welcome kept the job: send again what the server may not have, from its last ack. */
  resume(): void {
    if (this.dropped || this.state === 'offered') return;
    this.ready = true;
    this.sent = this.acked;
    this.statusSent = false;
    for (const port of this.ports) this.ctx.send({ type: 'port', jobId: this.id, port });
    this.pump();
  }

  ack(seq: number, final: boolean): void {
    if (seq > this.acked) {
      this.acked = seq;
      this.spool?.ack(seq);
      if (this.sent < seq) this.sent = seq;
    }
    if (final && this.state === 'ended' && !this.dropped) {
      this.dropped = true;
      this.spool?.close();
      this.ctx.gone(this);
      return;
    }
    this.pump();
  }

  private io(): JobIO {
    const refs = async (kind: 'dependencies' | 'caches'): Promise<ArchiveRef[]> => {
      const inputs = await this.http.json<Record<string, { path: string; url: string }[] | undefined>>(this.http.jobPath('inputs'));
      return (inputs[kind] ?? []).map((a) => ({ path: a.path, open: () => this.http.download(a.url) }));
    };
    const put = (kind: 'artifacts' | 'caches') => async (p: string, archive: Readable, size: { files: number; bytes: number }) => {
      const query = new URLSearchParams({ path: p, files: String(size.files), bytes: String(size.bytes) });
      await this.http.upload(`${this.http.jobPath(kind)}?${query}`, archive);
    };
    return {
      setStatus: async (status, fields) => this.setStatus(status, fields),
      log: (chunk) => this.log(chunk),
      logMayPause: () => this.spool?.pauseWhenMemoryIsUsed(),
      portOpen: (port) => {
        this.ports.add(port);
        if (this.ready) this.ctx.send({ type: 'port', jobId: this.id, port });
      },
      checkout: async (dest) => {
        // Asked for now, not with the offer: it is short-lived, and held only for this fetch.
        const token = this.offer.source.credentials ? (await this.http.json<{ token: string }>(this.http.jobPath('git-credentials'))).token : undefined;
        await this.ctx.mirrors.checkout({
          repoUrl: this.offer.source.repoUrl,
          commit: this.offer.source.commit,
          dest,
          ...(token ? { token } : {}),
          ...(this.offer.source.patch ? { patch: this.http.download(this.http.jobPath('patch')) } : {}),
        });
      },
      releaseCheckout: (dest) => this.ctx.mirrors.release(dest),
      dependencies: () => refs('dependencies'),
      caches: () => refs('caches'),
      putArtifact: put('artifacts'),
      putCache: put('caches'),
    };
  }

  /** Keeps the chunk on disk (a promise while the spool is full: the job then pauses), and sends what it can. */
  private log(chunk: LogChunk): void | Promise<void> {
    if (this.dropped || !this.spool) return;
    const wait = this.spool.push(chunk);
    this.pushed = chunk.seq;
    // Usually the next to send: it goes out from memory, and the spool is read only to resend.
    this.latest = chunk;
    this.pump();
    this.latest = undefined;
    return wait;
  }

  private setStatus(status: JobStatus, fields: { reason?: string | null; exit_code?: number | null } = {}): void {
    if (this.status && isFinal(this.status.status)) return;
    this.status = { type: 'status', jobId: this.id, status, reason: fields.reason ?? null, exitCode: fields.exit_code ?? null };
    this.statusSent = false;
    if (isFinal(status)) {
      this.state = 'ended';
      if (!this.dropped) this.ctx.ended(this, status, fields.reason ?? null);
    }
    this.pump();
  }

  /** Sends chunks in seq order from the spool while the window allows, then the latest status once every chunk before it is out. */
  private pump(): void {
    if (!this.ready || this.dropped || !this.spool) return;
    while (this.sent < this.pushed && this.sent - this.acked < LOG_WINDOW_CHUNKS) {
      const chunk = this.latest?.seq === this.sent + 1 ? this.latest : this.spool.read(this.sent + 1);
      if (!chunk) {
        // Acknowledged meanwhile (it can be no other way: the spool keeps every chunk until then).
        this.sent++;
        continue;
      }
      if (!this.ctx.send({ type: 'log', jobId: this.id, seq: chunk.seq, data: chunk.data })) return;
      this.sent = chunk.seq;
    }
    if (this.sent < this.pushed || !this.status || this.statusSent) return;
    if (this.ctx.send(this.status)) this.statusSent = true;
  }

  private runnerDone(): void {
    if (this.dropped) this.ctx.gone(this);
  }
}
