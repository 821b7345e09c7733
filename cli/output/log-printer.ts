import { paint } from './colors.js';

/** Reads `max` bytes of a job's stored log from `offset`. */
export type LogSource = (jobId: string, offset: number, max: number) => Buffer;

type Pending = { kind: 'log'; jobId: string; offset: number; length: number } | { kind: 'data'; jobId: string; data: Buffer } | { kind: 'line'; text: string };

/**
 * Writes job output to the terminal as it arrives. When a run has several jobs, a header names the
 * job whenever the output switches to another one.
 *
 * A terminal (or pipe) that falls behind never slows the job down and never makes output pile up
 * in memory: what it has not taken yet is remembered as ranges of the stored log and read back
 * from disk when it drains. So `dstack run | less` loses nothing, and the job runs at full speed.
 */
export class LogPrinter {
  private lastJob: string | undefined;
  private atLineStart = true;
  private readonly pending: Pending[] = [];
  private blocked = false;
  private pumping = false;
  private idle: (() => void)[] = [];
  private readonly color: ReturnType<typeof paint>;
  /** The reader went away (`dstack run … | head`): output stops, the run goes on and its log is kept. */
  closed = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly labels: Map<string, string>,
    colors: boolean,
    private readonly source?: LogSource,
  ) {
    this.color = paint(colors);
    out.on('error', () => {
      this.closed = true;
      this.pending.length = 0;
      this.settle();
    });
  }

  /** Output of a job; `offset` is where it starts in the job's stored log (lets a slow terminal catch up from disk). */
  write(jobId: string, data: Buffer, offset?: number): void {
    if (this.closed || data.length === 0) return;
    if (!this.blocked && this.pending.length === 0) {
      this.emit(jobId, data);
      return;
    }
    const last = this.pending[this.pending.length - 1];
    if (offset !== undefined && this.source) {
      if (last?.kind === 'log' && last.jobId === jobId && last.offset + last.length === offset) last.length += data.length;
      else this.pending.push({ kind: 'log', jobId, offset, length: data.length });
    } else {
      this.pending.push({ kind: 'data', jobId, data });
    }
  }

  /** A line of dstack's own, in order with the output. */
  line(text: string): void {
    if (this.closed) return;
    if (!this.blocked && this.pending.length === 0) this.put(`${this.atLineStart ? '' : '\n'}${text}\n`, true);
    else this.pending.push({ kind: 'line', text });
  }

  /** A promise while the terminal is behind; undefined when it keeps up. */
  backpressure(): Promise<void> | undefined {
    return !this.closed && (this.blocked || this.pending.length > 0) ? this.finish() : undefined;
  }

  /** Resolves once everything written so far has been handed to the terminal. */
  finish(): Promise<void> {
    if (this.closed || (!this.blocked && this.pending.length === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private emit(jobId: string, data: Buffer): void {
    if (this.labels.size > 1 && jobId !== this.lastJob) {
      this.put(`${this.atLineStart ? '' : '\n'}${this.color('bold', `── ${this.labels.get(jobId) ?? jobId} ──`)}\n`, true);
    }
    this.lastJob = jobId;
    this.put(data, data[data.length - 1] === 0x0a);
  }

  private put(data: string | Buffer, endsLine: boolean): void {
    this.atLineStart = endsLine;
    if (!this.out.write(data) && !this.blocked) {
      this.blocked = true;
      this.out.once('drain', () => {
        this.blocked = false;
        this.pump();
      });
    }
  }

  /** Writes what is pending, reading log ranges back from disk, until the terminal is full again. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    while (!this.blocked && !this.closed && this.pending.length > 0) {
      const next = this.pending[0]!;
      if (next.kind === 'line') {
        this.pending.shift();
        this.put(`${this.atLineStart ? '' : '\n'}${next.text}\n`, true);
      } else if (next.kind === 'data') {
        this.pending.shift();
        this.emit(next.jobId, next.data);
      } else {
        const data = this.source!(next.jobId, next.offset, Math.min(next.length, 1 << 20));
        if (data.length === 0) {
          this.pending.shift();
          continue;
        }
        next.offset += data.length;
        next.length -= data.length;
        if (next.length === 0) this.pending.shift();
        this.emit(next.jobId, data);
      }
    }
    this.pumping = false;
    this.settle();
  }

  private settle(): void {
    if (!this.closed && (this.blocked || this.pending.length > 0)) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
