import { execFile } from 'node:child_process';
import fs from 'node:fs';

/** The most read at once: large enough that a fast job costs few reads, small enough to stay light in memory. */
const READ_BYTES = 256 * 1024;
/** The wait after a read that found less than a full buffer, so a job printing a line at a time costs a read every few milliseconds, not one per line. */
const TRICKLE_MS = 5;
/** The waits at the end of the file, while the writer may still add to it: short at first, longer as it stays quiet. */
const IDLE_FIRST_MS = 2;
const IDLE_MAX_MS = 50;
/** Read bytes are handed back to the filesystem (a hole is punched) every this many. */
const PUNCH_EVERY = 64 * 1024 * 1024;

/**
 * Follows a file another process writes, handing on what it adds, in order. The writer never
 * waits for the reader: however busy the reader's event loop, the file takes the writer's output
 * at once. Every read goes into the same buffer, so what `onData` gets is lent for the call only
 * (copy what you keep): a fresh quarter-megabyte per read cost a page fault for every 4 KB of the
 * job's output, 50,000 per 200 MB. What has been read is punched out of the file as it goes
 * (`fallocate --punch-hole`, where the filesystem can), so a long job's output does not pile up
 * on disk.
 */
export class FileTail {
  private readonly fd: number;
  private offset = 0;
  private punched = 0;
  private canPunch = true;
  private paused = false;
  private reading = false;
  private timer: NodeJS.Timeout | undefined;
  private writerDone = false;
  private idleMs = IDLE_FIRST_MS;
  private buffer: Buffer | undefined;
  private closed = false;
  private finished: (() => void) | undefined;
  readonly done: Promise<void>;

  /** `onData`'s bytes are valid until it returns: the next read reuses them. */
  constructor(private readonly file: string, private readonly onData: (data: Buffer) => void) {
    this.fd = fs.openSync(file, 'r');
    this.done = new Promise((resolve) => (this.finished = resolve));
    this.readSoon();
  }

  /** Bytes written and not yet read. */
  backlog(): number {
    if (this.closed) return 0;
    return fs.fstatSync(this.fd).size - this.offset;
  }

  /** The writer has finished: read to the end of the file, then `done` settles. */
  writerEnded(): void {
    this.writerDone = true;
    this.wake();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.wake();
  }

  private wake(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.read();
  }

  private read(): void {
    if (this.reading || this.paused || this.closed) return;
    const buf = (this.buffer ??= Buffer.allocUnsafeSlow(READ_BYTES));
    // Read on this thread: what is read was just written, so it comes from the page cache in
    // microseconds, and a hop through libuv's thread pool would cost two thread wake-ups per read
    // on a machine whose CPUs the job needs.
    let n: number;
    try {
      n = fs.readSync(this.fd, buf, 0, buf.length, this.offset);
    } catch {
      n = 0; // a read error reads as the end: the writer's exit then ends the tail
    }
    if (n > 0) {
      this.offset += n;
      this.onData(buf.subarray(0, n));
      this.punch();
    }
    if (n === 0 && this.writerDone) return this.close();
    // A full read: more is likely waiting, read on once the event loop has sent what this one gave.
    if (n === buf.length) return this.readSoon();
    let wait = TRICKLE_MS;
    if (n > 0) this.idleMs = IDLE_FIRST_MS;
    else {
      wait = this.idleMs;
      this.idleMs = Math.min(this.idleMs * 2, IDLE_MAX_MS);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.read();
    }, wait);
  }

  /** Reads once the event loop has had its turn (never from inside the caller's own call). */
  private readSoon(): void {
    this.reading = true;
    setImmediate(() => {
      this.reading = false;
      this.read();
    });
  }

  private punch(): void {
    if (!this.canPunch || this.offset - this.punched < PUNCH_EVERY) return;
    const upTo = this.offset - (this.offset % (1024 * 1024));
    this.punched = upTo;
    execFile('fallocate', ['--punch-hole', '--offset', '0', '--length', String(upTo), this.file], (err) => {
      // No fallocate, or a filesystem without holes: the file keeps its blocks until it is removed.
      if (err) this.canPunch = false;
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
    this.finished?.();
  }
}
