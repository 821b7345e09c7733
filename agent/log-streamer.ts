/** One sequenced piece of a job's output. */
export interface LogChunk {
  seq: number;
  data: Buffer;
}

/**
 * Where chunks go; a returned promise means "slow down": the producer pauses until it settles. A
 * chunk's bytes may be lent for the call only (the job's output is read into one buffer, again
 * and again): a sink that keeps them past its return copies them.
 */
export type LogSink = (chunk: LogChunk) => void | Promise<void>;

export const MAX_CHUNK_BYTES = 64 * 1024;
export const FLUSH_INTERVAL_MS = 100;

/** What became of the chunks when the streamer drained: a sink that failed loses chunks. */
export interface DrainResult {
  /** Chunks sent since the start. */
  sent: number;
  /** Chunks the sink failed to take (threw, or its promise rejected). */
  failed: number;
  /** The first failure, to report. */
  error?: unknown;
}

/**
 * Turns a job's raw output into sequenced chunks of bounded size, flushed at least every 100 ms,
 * and drains what is left when the job ends. `seq` starts at 1 and has no gaps.
 */
export class LogStreamer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Chunks the sink has not yet taken: the producer is paused while there are any. */
  private readonly inflight = new Set<Promise<void>>();
  private failed = 0;
  private error: unknown;

  private readonly base: number;

  /** `firstSeq` is past 1 when a job runs again after an interruption, so its log goes on where it stopped. */
  constructor(private readonly sink: LogSink, private readonly onBackpressure?: (paused: boolean) => void, firstSeq = 1) {
    this.seq = this.base = firstSeq - 1;
  }

  /** Output to sequence; its bytes need only be valid for the call (what waits for the next flush is copied). */
  write(data: Buffer | string): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length === 0) return;
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= MAX_CHUNK_BYTES) {
      this.pending.push(buf);
      this.flush();
      return;
    }
    // Kept until the flush, past this call: a copy, since the caller may use its buffer again.
    this.pending.push(typeof data === 'string' ? buf : Buffer.from(buf));
    this.timer ??= setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
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
    for (let off = 0; off < all.length; off += MAX_CHUNK_BYTES) this.send({ seq: ++this.seq, data: all.subarray(off, off + MAX_CHUNK_BYTES) });
  }

  private send(chunk: LogChunk): void {
    let result: void | Promise<void>;
    try {
      result = this.sink(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (!result) return;
    if (this.inflight.size === 0) this.onBackpressure?.(true);
    const settled: Promise<void> = result.then(
      () => {},
      (err: unknown) => this.fail(err),
    );
    this.inflight.add(settled);
    void settled.finally(() => {
      this.inflight.delete(settled);
      if (this.inflight.size === 0) this.onBackpressure?.(false);
    });
  }

  private fail(err: unknown): void {
    if (this.failed++ === 0) this.error = err;
  }

  /** Flushes what is buffered and waits until the sink has taken (or failed to take) every chunk. */
  async drain(): Promise<DrainResult> {
    this.flush();
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    return { sent: this.seq - this.base, failed: this.failed, ...(this.failed > 0 ? { error: this.error } : {}) };
  }
}
