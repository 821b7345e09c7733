import { paint } from './colors.js';

/**
 * Writes job output to the terminal as it arrives. When a run has several jobs, a header names the
 * job whenever the output switches to another one. A full pipe slows the job down (see
 * `backpressure`) instead of piling output up in memory.
 */
export class LogPrinter {
  private lastJob: string | undefined;
  private atLineStart = true;
  private blocked: Promise<void> | undefined;
  private readonly color: ReturnType<typeof paint>;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly labels: Map<string, string>,
    colors: boolean,
  ) {
    this.color = paint(colors);
  }

  write(jobId: string, data: Buffer): void {
    if (this.labels.size > 1 && jobId !== this.lastJob) {
      this.put(`${this.atLineStart ? '' : '\n'}${this.color('bold', `── ${this.labels.get(jobId) ?? jobId} ──`)}\n`);
      this.atLineStart = true;
    }
    this.lastJob = jobId;
    if (data.length > 0) {
      this.put(data);
      this.atLineStart = data[data.length - 1] === 0x0a;
    }
  }

  line(text: string): void {
    this.put(`${this.atLineStart ? '' : '\n'}${text}\n`);
    this.atLineStart = true;
  }

  /** A promise while the terminal is behind; undefined when it keeps up. */
  backpressure(): Promise<void> | undefined {
    return this.blocked;
  }

  private put(data: string | Buffer): void {
    if (!this.out.write(data) && !this.blocked) {
      this.blocked = new Promise((resolve) =>
        this.out.once('drain', () => {
          this.blocked = undefined;
          resolve();
        }),
      );
    }
  }
}
