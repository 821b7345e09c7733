/** One sequenced piece of a job's output. */
export interface LogChunk {
  seq: number;
  data: Buffer;
}

/** Where chunks go; a returned promise means "slow down": the producer pauses until it settles. */
export type LogSink = (chunk: LogChunk) => void | Promise<void>;

export const MAX_CHUNK_BYTES = 64 * 1024;
export const FLUSH_INTERVAL_MS = 100;

/**
 * Turns a job's raw output into sequenced chunks of bounded size, flushed at least every 100 ms,
 * and drains what is left when the job ends. `seq` starts at 1 and has no gaps.
 */
export class LogStreamer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;

  constructor(private readonly sink: LogSink, private readonly onBackpressure?: (paused: boolean) => void) {}

  write(data: Buffer | string): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length === 0) return;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= MAX_CHUNK_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
  }

  /** A line from dstack itself (not the job), shown in the job's log. */
  note(line: string): void {
    this.write(`\x1b[2m${line}\x1b[0m\r\n`);
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pendingBytes === 0) return;
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    for (let off = 0; off < all.length; off += MAX_CHUNK_BYTES) {
      const result = this.sink({ seq: ++this.seq, data: all.subarray(off, off + MAX_CHUNK_BYTES) });
      if (result) this.waitFor(result);
    }
  }

  private waitFor(p: Promise<void>): void {
    if (this.inflight) return;
    this.onBackpressure?.(true);
    this.inflight = p.finally(() => {
      this.inflight = undefined;
      this.onBackpressure?.(false);
    });
  }

  /** Flushes what is buffered and waits until the sink has taken it. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inflight) await this.inflight;
  }
}
