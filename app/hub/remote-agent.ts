import { WebSocket } from 'ws';
import { isFinal, type JobStatus } from '../../shared/job-status.js';
import { ACK_DELAY_MS, ACK_EVERY_CHUNKS, CLOSE, PROTOCOL_VERSION, type AgentMessage, type AppMessage } from '../../shared/protocol.js';
import type { Gpu, MachineResources } from '../../shared/resources.js';
import { referencedSecrets } from '../../shared/secrets.js';
import { JOB_TOKEN_TTL_MS, type JobTokens } from '../auth/job-tokens.js';
import type { Sealer } from '../auth/sealed.js';
import { JobEndpoint } from '../job-endpoint.js';
import type { RunService } from '../run-service.js';
import type { StorageHealth } from '../storage-health.js';
import type { Agent, Scheduler, StartedJob, StopMode } from '../scheduler/scheduler.js';
import { jobSpec, type JobRow } from '../store/store.js';

type Hello = Extract<AgentMessage, { type: 'hello' }>;

/** What every remote agent shares: the run service, the scheduler, how to reach the job routes. */
export interface HubContext {
  service: RunService;
  scheduler: Scheduler;
  jobTokens: JobTokens;
  sealer: Sealer;
  acceptWithinMs: number;
  observeDispatch: (seconds: number) => void;
  /** A log chunk or status that cannot be stored for lack of space waits on the agent (see `waitForSpace`). */
  storage: StorageHealth;
  log: (line: string) => void;
}

interface TrackedJob {
  job: JobRow;
  /** The app's half of the job contract, for its log chunks (one per job, not per chunk). */
  endpoint: JobEndpoint;
  /** The agent accepted the offer and was told to start: the job is the agent's until it ends. */
  accepted: boolean;
  offeredAt: number;
  offerTimer?: NodeJS.Timeout;
  stop?: StopMode;
  /** Its log has a gap no resend can fill: the job is aborted, and what else comes of its log is dropped. */
  logLost?: boolean;
  /** A chunk (or status) could not be stored for lack of space: nothing more is taken until the agent sends it again. */
  waitingForSpace?: boolean;
  tokenIssuedAt: number;
  resolve: (status: JobStatus) => void;
}

/** How many of the jobs last offered to an agent it may still answer late (see `RemoteAgent.offered`). */
const OFFERS_KEPT = 10_000;

/** A message that breaks the protocol for this agent: its socket is closed with 1008 and this reason. */
export class AgentViolation extends Error {}

/**
 * One runner agent as the scheduler sees it (an Agent), across its connections: it outlives a
 * dropped socket, so an agent that reconnects within the liveness window picks its jobs up again.
 * It turns the scheduler's `start` into offer → accept → start, and the agent's messages about its
 * jobs into the run service's status changes and log chunks, checking that each job is this
 * agent's.
 */
export class RemoteAgent implements Agent {
  readonly id: string;
  readonly name: string;
  readonly owner: string;
  labels: readonly string[];
  resources: MachineResources;
  version: string;
  /** Which agent process it is (see hello's `instance`). */
  instance: string | undefined;
  private socket: WebSocket | undefined;
  private readonly jobs = new Map<string, TrackedJob>();
  /** Jobs it declined since it connected, with its reason (the waiting reason says it). */
  private readonly declinedJobs = new Map<string, string>();
  /**
   * Jobs offered to this agent, the latest OFFERS_KEPT of them: an accept or reject of one that
   * was taken back is a race, of any other job abuse of the protocol.
   */
  private readonly offered = new Set<string>();
  /** When the agent was last heard from (a message or a pong). */
  lastHeard = Date.now();
  /** The server's base URL as this agent reaches it, for the job routes in its offers. */
  private apiBase = '';

  constructor(private readonly ctx: HubContext, owner: string, hello: Hello) {
    this.owner = owner;
    this.name = hello.agent.name;
    this.id = `${owner}/${hello.agent.name}`;
    this.labels = hello.agent.labels;
    this.resources = hello.agent.resources;
    this.version = hello.agent.version;
    this.instance = hello.agent.instance;
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Jobs the agent holds now (offered or running). */
  get jobCount(): number {
    return this.jobs.size;
  }

  declined(jobId: string): string | undefined {
    return this.declinedJobs.get(jobId);
  }

  /**
   * Takes a new connection of this agent: what it runs goes on, what it no longer knows of is
   * aborted, what the server no longer runs it is told to forget.
   */
  attach(socket: WebSocket, hello: Hello, apiBase: string): void {
    const previous = this.socket;
    this.socket = socket;
    this.apiBase = apiBase;
    if (previous && previous !== socket && previous.readyState === WebSocket.OPEN) previous.close(CLOSE.normal, 'replaced by a new connection of the same agent');
    this.labels = hello.agent.labels;
    this.resources = hello.agent.resources;
    this.version = hello.agent.version;
    this.instance = hello.agent.instance;
    this.lastHeard = Date.now();
    this.declinedJobs.clear();

    const forget: string[] = [];
    const held = new Set<string>();
    for (const { jobId } of hello.running) {
      const job = this.ctx.service.job(jobId);
      if (!job || job.agent !== this.id || isFinal(job.status)) {
        forget.push(jobId);
        continue;
      }
      held.add(jobId);
      let tracked = this.jobs.get(jobId);
      if (!tracked) {
        // The server restarted while the agent ran this job: take it in again.
        tracked = this.track(job, true);
        // Its token is the previous server's, of unknown age: a fresh one goes out at once.
        tracked.tokenIssuedAt = 0;
        this.ctx.scheduler.adopt(job, { done: this.doneOf(tracked), stop: (mode) => this.stopJob(jobId, mode) });
      }
      tracked.accepted = true;
      tracked.waitingForSpace = false;
      clearTimeout(tracked.offerTimer);
    }
    this.send({ type: 'welcome', protocol: PROTOCOL_VERSION, agentId: this.id, forget });
    for (const [jobId, tracked] of this.jobs) {
      if (held.has(jobId)) {
        this.send({ type: 'ack', jobId, seq: this.ctx.service.lastLogSeq(jobId) });
        if (tracked.stop) this.send({ type: 'stop', jobId, mode: tracked.stop });
      } else if (tracked.accepted && this.ctx.service.job(jobId)!.status === 'submitted') {
        // Accepted, but the start was lost with the old connection: nothing ran, so it waits again.
        this.requeue(jobId, `waiting: the start did not reach agent ${this.name} before its connection dropped`);
      } else if (tracked.accepted) {
        this.endJob(jobId, 'aborted', `agent ${this.name} restarted and no longer runs it`, true);
      } else {
        this.withdraw(jobId, 'the agent reconnected');
      }
    }
  }

  /** Whether `socket` is its connection now. */
  usesSocket(socket: WebSocket): boolean {
    return this.socket === socket;
  }

  /** The jobs it holds (offered or running). */
  jobIds(): string[] {
    return [...this.jobs.keys()];
  }

  /** Drops its socket and timers (the agent was lost, or the server stops); a later connection is a new agent. */
  close(): void {
    for (const tracked of this.jobs.values()) clearTimeout(tracked.offerTimer);
    this.socket?.terminate();
    this.socket = undefined;
  }

  /** The socket closed; the hub calls `lost()` if the agent does not come back in time. */
  detach(socket: WebSocket): void {
    if (this.socket === socket) this.socket = undefined;
  }

  /**
   * The agent is lost (silent too long, or its token revoked; `why` says which): its running jobs
   * end `aborted`, or wait for another agent when their workflow is `interruptible`; offers not yet
   * accepted go back to the queue.
   */
  lost(why: string): void {
    for (const [jobId, tracked] of [...this.jobs]) {
      if (!tracked.accepted) {
        this.withdraw(jobId, 'the agent was lost');
        continue;
      }
      // Its log ends where the server stored it: what the agent still had is gone with it.
      if (tracked.waitingForSpace) this.endJob(jobId, 'aborted', this.ctx.storage.logNotKept(`${why} while the server waited for space`), true);
      else if (jobSpec(tracked.job).resources.interruptible) this.requeue(jobId, `${why}; interruptible, so it waits to run again`);
      else this.endJob(jobId, 'aborted', why, true);
    }
  }

  /** Whether a job of this agent waits for the server to have space for what it sends. */
  get waitsForSpace(): boolean {
    return [...this.jobs.values()].some((t) => t.waitingForSpace);
  }

  /**
   * The data folder has room again: the agent is asked to connect again, and then sends what the
   * server did not store, from its last ack, as after any reconnect (one reconnect, not a resend protocol).
   */
  resumeAfterSpace(): void {
    if (!this.waitsForSpace) return;
    this.ctx.log(`agent ${this.id}: the data folder has room again; asking it to send its log again from the last ack`);
    this.socket?.close(CLOSE.normal, 'the server has room again: send again from the last ack');
  }

  start(job: JobRow, gpus: Gpu[]): StartedJob {
    const { service, sealer, jobTokens } = this.ctx;
    const run = service.runRow(job.run_name)!;
    const source = service.sourceOf(run);
    if (!source) throw new Error(`run ${run.name} has no code for a remote agent`);
    const workflow = jobSpec(job);
    const values = run.secrets ? sealer.open(run.secrets) : {};
    const secrets = Object.fromEntries(referencedSecrets(workflow).map((name) => [name, values[name] ?? '']));
    const tracked = this.track(job, false);
    this.offered.delete(job.id);
    this.offered.add(job.id);
    if (this.offered.size > OFFERS_KEPT) this.offered.delete(this.offered.values().next().value!);
    const sent = this.send({
      type: 'offer',
      jobId: job.id,
      runName: job.run_name,
      workflow,
      gpus: gpus.map((g) => g.uuid),
      secrets,
      source: {
        repoUrl: source.repoUrl,
        commit: source.commit,
        patch: source.patch !== null,
        ...(source.credentials ? { credentials: true } : {}),
        ...(source.untrusted ? { untrusted: true } : {}),
      },
      api: { url: this.apiBase, token: jobTokens.issue(job.id, this.id) },
      acceptWithinMs: this.ctx.acceptWithinMs,
      firstLogSeq: service.lastLogSeq(job.id) + 1,
    });
    if (!sent) this.declinedJobs.set(job.id, 'it is not connected');
    tracked.offerTimer = setTimeout(() => this.withdraw(job.id, `not accepted within ${this.ctx.acceptWithinMs} ms`), sent ? this.ctx.acceptWithinMs : 0);
    return { done: this.doneOf(tracked), stop: (mode) => this.stopJob(job.id, mode) };
  }

  /** Handles one message of this agent about one of its jobs. */
  receive(message: Exclude<AgentMessage, { type: 'hello' }>): void {
    this.lastHeard = Date.now();
    const tracked = this.jobs.get(message.jobId);
    switch (message.type) {
      case 'accept': {
        if (!tracked) {
          this.wasOffered(message);
          // Too late: the offer went back to the queue (and maybe to another agent).
          this.send({ type: 'cancel', jobId: message.jobId, reason: 'the offer was withdrawn' });
          return;
        }
        // A late accept of an earlier offer of this job to this agent took the new offer: the
        // agent's accept of that one is a repeat, and the job it runs must not be cancelled.
        if (tracked.accepted) return;
        clearTimeout(tracked.offerTimer);
        tracked.accepted = true;
        this.send({ type: 'start', jobId: message.jobId });
        this.ctx.observeDispatch((Date.now() - tracked.offeredAt) / 1000);
        if (tracked.stop) this.send({ type: 'stop', jobId: message.jobId, mode: tracked.stop });
        return;
      }
      case 'reject':
        if (!tracked) this.wasOffered(message);
        if (!tracked || tracked.accepted) return;
        // Bounded (it is cleared on each reconnect too): a declined job that ran elsewhere long ago is no matter.
        if (this.declinedJobs.size >= 10_000) this.declinedJobs.clear();
        this.declinedJobs.set(message.jobId, message.reason || 'no reason given');
        this.withdraw(message.jobId, `declined: ${message.reason}`);
        return;
      case 'status':
      case 'log': {
        const owned = this.own(tracked, message.jobId);
        // Kept by the agent (unacknowledged) until the reconnect that follows room coming back.
        if (owned.waitingForSpace) return;
        try {
          if (message.type === 'status') this.onStatus(owned, message);
          else this.onLog(owned, message.seq, message.data);
        } catch (err) {
          if (!this.ctx.storage.failed(err)) throw err;
          this.waitForSpace(owned);
        }
        return;
      }
      case 'port':
        this.own(tracked, message.jobId);
        this.ctx.service.portOpen(message.jobId, message.port);
        return;
    }
  }

  /** Sends running jobs a fresh token once half of the old one's life has passed. */
  refreshTokens(now = Date.now()): void {
    for (const [jobId, tracked] of this.jobs) {
      if (!tracked.accepted || now - tracked.tokenIssuedAt < JOB_TOKEN_TTL_MS / 2) continue;
      if (this.send({ type: 'token', jobId, token: this.ctx.jobTokens.issue(jobId, this.id) })) tracked.tokenIssuedAt = now;
    }
  }

  send(message: AppMessage): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  /** An answer to an offer this agent no longer holds: late if it had the offer, else abuse. */
  private wasOffered(message: { type: string; jobId: string }): void {
    if (!this.offered.has(message.jobId)) throw new AgentViolation(`${message.type} of job ${message.jobId.slice(0, 60)}, which was never offered to this agent`);
  }

  private own(tracked: TrackedJob | undefined, jobId: string): TrackedJob {
    if (!tracked || !tracked.accepted) throw new AgentViolation(`message about job ${jobId.slice(0, 60)}, which is not this agent's`);
    return tracked;
  }

  private onStatus(tracked: TrackedJob, message: Extract<AgentMessage, { type: 'status' }>): void {
    const { service } = this.ctx;
    const jobId = tracked.job.id;
    const current = service.job(jobId)!;
    if (!isFinal(current.status) && (current.status !== message.status || isFinal(message.status))) {
      if (message.status === 'submitted') throw new AgentViolation(`job ${jobId} cannot go back to submitted`);
      service.setJobStatus(jobId, message.status, { reason: message.reason ?? null, exit_code: message.exitCode ?? null });
    }
    if (!isFinal(message.status)) return;
    // The end is recorded (or was already): the agent may forget the job, after the acks before it.
    this.flushAcks();
    this.send({ type: 'ack', jobId, seq: service.lastLogSeq(jobId), final: true });
    this.settle(jobId, service.job(jobId)!.status);
  }

  /**
   * Nothing of the job was stored: not acknowledged, it stays in the agent's spool (bounded: a job
   * that fills it is paused), and what the agent sends of it meanwhile is dropped unread, unacked.
   */
  private waitForSpace(tracked: TrackedJob): void {
    tracked.waitingForSpace = true;
    this.ctx.log(`agent ${this.id}: job ${tracked.job.id}: ${this.ctx.storage.error().message}; its log waits on the agent`);
  }

  private onLog(tracked: TrackedJob, seq: number, data: Buffer): void {
    const jobId = tracked.job.id;
    const last = this.ctx.service.lastLogSeq(jobId);
    // Chunks come in order on one socket, and after a reconnect from the last ack: a gap means
    // lost chunks, which must not be skipped (a later resend would be taken for a duplicate). The
    // agent no longer has them (the server lost what it had acknowledged, say), so that job
    // is aborted; the agent's other jobs go on. What it still sends of that job is acknowledged unread.
    const acked = tracked.logLost ? seq : seq > last + 1 ? this.logGap(tracked, last, seq) : seq <= last ? last : tracked.endpoint.appendLog(seq, data);
    // One ack for many chunks: after a quarter of the agent's window, else a moment later.
    this.pendingAcks.set(jobId, acked);
    if (++this.chunksSinceAck >= ACK_EVERY_CHUNKS) this.flushAcks();
    else this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_DELAY_MS);
  }

  /** Aborts a job whose log has a gap that cannot be filled, and stops it on the agent; returns the seq to ack. */
  private logGap(tracked: TrackedJob, last: number, seq: number): number {
    const jobId = tracked.job.id;
    tracked.logLost = true;
    const lost = seq - 1 === last + 1 ? `chunk ${last + 1}` : `chunks ${last + 1}–${seq - 1}`;
    const reason = `its log lost ${lost}: the server does not have them and agent ${this.name} no longer does (it sent chunk ${seq}), so the log cannot be whole`;
    this.ctx.log(`agent ${this.id}: job ${jobId}: ${reason}`);
    if (!isFinal(this.ctx.service.job(jobId)!.status)) this.ctx.service.setJobStatus(jobId, 'aborted', { reason, log_incomplete: true });
    tracked.stop = 'abort';
    this.send({ type: 'stop', jobId, mode: 'abort' });
    return seq;
  }

  private readonly pendingAcks = new Map<string, number>();
  private ackTimer: NodeJS.Timeout | undefined;
  private chunksSinceAck = 0;

  private flushAcks(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.chunksSinceAck = 0;
    for (const [jobId, seq] of this.pendingAcks) this.send({ type: 'ack', jobId, seq });
    this.pendingAcks.clear();
  }

  private track(job: JobRow, accepted: boolean): TrackedJob {
    let resolve!: (status: JobStatus) => void;
    const done = new Promise<JobStatus>((r) => (resolve = r));
    const endpoint = new JobEndpoint(this.ctx.service, job, '');
    const tracked: TrackedJob = { job, endpoint, accepted, offeredAt: Date.now(), tokenIssuedAt: Date.now(), resolve };
    this.dones.set(tracked, done);
    this.jobs.set(job.id, tracked);
    return tracked;
  }

  private readonly dones = new WeakMap<TrackedJob, Promise<JobStatus>>();

  private doneOf(tracked: TrackedJob): Promise<JobStatus> {
    return this.dones.get(tracked)!;
  }

  private stopJob(jobId: string, mode: StopMode): void {
    const tracked = this.jobs.get(jobId);
    if (!tracked) return;
    if (!tracked.accepted) {
      clearTimeout(tracked.offerTimer);
      this.send({ type: 'cancel', jobId, reason: 'the run was stopped' });
      this.endJob(jobId, mode === 'abort' ? 'aborted' : 'stopped', 'stopped before it started');
      return;
    }
    if (tracked.stop === 'abort') return;
    tracked.stop = mode;
    // Sent now, or when the agent is back.
    this.send({ type: 'stop', jobId, mode });
  }

  /** Takes an offer back: the job waits in the queue again. */
  private withdraw(jobId: string, why: string): void {
    const tracked = this.jobs.get(jobId);
    if (!tracked || tracked.accepted) return;
    clearTimeout(tracked.offerTimer);
    this.send({ type: 'cancel', jobId, reason: why });
    this.ctx.log(`agent ${this.id}: offer of ${jobId} withdrawn: ${why}`);
    this.requeue(jobId, `waiting: agent ${this.name} did not take it (${why})`);
  }

  private requeue(jobId: string, reason: string): void {
    const { service } = this.ctx;
    service.releaseResources(jobId);
    if (!isFinal(service.job(jobId)!.status)) service.setJobStatus(jobId, 'submitted', { reason });
    this.settle(jobId, 'submitted');
  }

  private endJob(jobId: string, status: JobStatus, reason: string, logIncomplete = false): void {
    const { service } = this.ctx;
    if (!isFinal(service.job(jobId)!.status)) service.setJobStatus(jobId, status, { reason, log_incomplete: logIncomplete });
    this.settle(jobId, status);
  }

  private settle(jobId: string, status: JobStatus): void {
    const tracked = this.jobs.get(jobId);
    if (!tracked) return;
    clearTimeout(tracked.offerTimer);
    this.jobs.delete(jobId);
    tracked.resolve(status);
  }
}
