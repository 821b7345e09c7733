import type { WebSocket } from 'ws';
import { isFinal } from '../../shared/job-status.js';
import { encodeLogFrameOf } from '../../shared/log-frame.js';
import type { RunService } from '../run-service.js';
import type { JobRow } from '../store/store.js';
import { publicRun } from './user-views.js';

/** How much a follower reads from a stored log at a time. */
const CHUNK_BYTES = 64 * 1024;
/** Stop reading while this much is queued on the socket; go on once it is below LOW_WATER. */
const HIGH_WATER = 1 << 20;
const LOW_WATER = 256 * 1024;
/** The most output held to go out as one message (see `hold`). */
const MAX_HELD_BYTES = 1 << 20;

/**
 * One client following a run's logs over a WebSocket (`dstack logs -f`, `dstack run` against a
 * server). Messages, JSON: `run` (the run, first), `log` (a piece of a job's output), `job` (a
 * status change), `port`, then `end` (the run as it ended) and a normal close. A `log` is
 * `{jobId, data: base64}`, or, for a client that asked for `frames=binary` (the CLI does), a binary
 * log frame (shared/log-frame.ts, with the byte offset of the piece): no base64, no JSON.
 * Clients written against the JSON form keep working.
 *
 * Every job's log is sent from its start, read from the stored log a piece at a time, so nothing
 * printed before the client attached is missed. A follower that has caught up is sent new output
 * as it is stored, the pieces of one turn of the event loop as one message; one that is behind
 * reads it back from the store in turn, and reading pauses while the socket has a lot queued (a
 * slow client), so memory stays bounded however fast a job prints and however slow the client is.
 */
export class LogFollower {
  private readonly sent = new Map<string, number>();
  private jobs: JobRow[];
  private pumping = false;
  private blocked = false;
  private ended = false;
  /** New output that goes out as one message once this turn of the event loop is over. */
  private held: { jobId: string; offset: number; pieces: Buffer[]; bytes: number } | undefined;
  private flushing: NodeJS.Immediate | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly service: RunService,
    private readonly runName: string,
    /** With false, send what is stored and end (`dstack logs` without -f). */
    private readonly follow: boolean,
    private readonly onClose: () => void,
    /** Log pieces as binary frames rather than JSON. */
    private readonly binary = false,
  ) {
    const view = service.view(runName);
    this.jobs = view.jobs;
    for (const job of this.jobs) this.sent.set(job.id, 0);
    ws.on('close', () => {
      this.ended = true;
      onClose();
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', () => ws.close(1008, 'a log follower only listens'));
    this.send({ type: 'run', ...publicRun(service, view) });
    this.pump();
  }

  /** Whether a job's events concern this follower. */
  has(jobId: string): boolean {
    return this.sent.has(jobId);
  }

  /**
   * New output of one of the run's jobs was stored at `offset`. A follower that has sent everything
   * before it sends it as it is; one that is behind reads it back from the store in turn.
   */
  logged(jobId: string, data: Buffer, offset: number): void {
    if (!this.pumping && !this.blocked && !this.ended && this.sent.get(jobId) === offset && this.ws.bufferedAmount < HIGH_WATER) {
      this.sent.set(jobId, offset + data.length);
      this.hold(jobId, offset, data);
      return;
    }
    this.pump();
  }

  /**
   * Output that arrives in one turn of the event loop (the agent's chunks come several to a read of
   * its socket) goes out as one message: a fast job's log then costs the server a send, and the
   * client a wake-up, per read rather than per chunk. Nothing waits longer than that turn.
   */
  private hold(jobId: string, offset: number, data: Buffer): void {
    const held = this.held;
    if (held && held.jobId === jobId && held.offset + held.bytes === offset && held.bytes + data.length <= MAX_HELD_BYTES) {
      held.pieces.push(data);
      held.bytes += data.length;
      return;
    }
    this.flushHeld();
    this.held = { jobId, offset, pieces: [data], bytes: data.length };
    this.flushing ??= setImmediate(() => {
      this.flushing = undefined;
      this.flushHeld();
    });
  }

  /** Sends the held output now: before anything else goes out, so the order is the log's. */
  private flushHeld(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    this.send(this.logMessage(held.jobId, held.offset, held.pieces));
  }

  jobChanged(job: JobRow): void {
    this.jobs = this.jobs.map((j) => (j.id === job.id ? job : j));
    this.flushHeld();
    this.send({ type: 'job', job });
    this.pump();
  }

  port(jobId: string, port: number): void {
    this.flushHeld();
    this.send({ type: 'port', jobId, port });
  }

  private logMessage(jobId: string, offset: number, pieces: Buffer[]): Buffer | object {
    return this.binary ? encodeLogFrameOf(jobId, offset, pieces) : { type: 'log', jobId, data: Buffer.concat(pieces).toString('base64') };
  }

  /** A log frame as it is, any other message as JSON. */
  private send(message: Buffer | object): void {
    if (this.ended) return;
    this.ws.send(Buffer.isBuffer(message) ? message : JSON.stringify(message), () => {
      if (this.blocked && this.ws.bufferedAmount < LOW_WATER) {
        this.blocked = false;
        this.pump();
      }
    });
  }

  private pump(): void {
    if (this.pumping || this.ended) return;
    this.pumping = true;
    this.flushHeld();
    try {
      for (const job of this.jobs) {
        for (;;) {
          if (this.ws.bufferedAmount >= HIGH_WATER) {
            this.blocked = true;
            return;
          }
          const offset = this.sent.get(job.id)!;
          const data = this.service.readLog(job.id, offset, CHUNK_BYTES);
          if (data.length === 0) break;
          this.sent.set(job.id, offset + data.length);
          this.send(this.logMessage(job.id, offset, [data]));
        }
      }
      // The jobs' statuses come with their events (jobChanged): the store is asked for the run
      // once, at its end, not on every chunk of output.
      const ended = this.jobs.every((j) => isFinal(j.status));
      if (this.follow && !ended) return;
      const caughtUp = this.jobs.every((j) => this.sent.get(j.id) === this.service.logSize(j.id));
      if (caughtUp) {
        const view = this.service.view(this.runName);
        this.send({ type: 'end', ...publicRun(this.service, view) });
        this.ended = true;
        this.ws.close(1000, 'end');
      }
    } finally {
      this.pumping = false;
    }
  }

  close(): void {
    this.ended = true;
    if (this.flushing) clearImmediate(this.flushing);
    this.ws.terminate();
  }
}
