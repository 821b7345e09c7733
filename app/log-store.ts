import fs from 'node:fs';
import path from 'node:path';

const RECORD = 16;

interface Writer {
  log: number;
  index: number;
  lastSeq: number;
  size: number;
  /** Bytes of whole records in the index. */
  indexSize: number;
}

/**
 * Job logs as append-only files, one per job, with an index of `(seq, end offset)` records beside
 * each. A chunk whose `seq` was already stored is dropped, so a resend after a reconnect never
 * doubles a line.
 */
export class LogStore {
  private readonly writers = new Map<string, Writer>();

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  logPath(jobId: string): string {
    return path.join(this.dir, `${jobId}.log`);
  }

  /** Stores one chunk; returns false when it was a duplicate. */
  append(jobId: string, seq: number, data: Buffer | string): boolean {
    const w = this.writer(jobId);
    if (seq <= w.lastSeq) return false;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const record = Buffer.alloc(RECORD);
    record.writeDoubleLE(seq, 0);
    record.writeDoubleLE(w.size + bytes.length, 8);
    try {
      writeAll(w.log, bytes);
      writeAll(w.index, record);
    } catch (err) {
      // A full disk takes part of a chunk: cut it off, so the chunk can be stored whole when it comes again.
      fs.ftruncateSync(w.log, w.size);
      fs.ftruncateSync(w.index, w.indexSize);
      throw err;
    }
    w.size += bytes.length;
    w.indexSize += RECORD;
    w.lastSeq = seq;
    return true;
  }

  /** How many bytes of a job's log are stored: where the next chunk will start. */
  end(jobId: string): number {
    return this.writer(jobId).size;
  }

  /** The highest `seq` stored for a job, or 0; a job with no writer open (one that ended) gets none opened. */
  lastSeq(jobId: string): number {
    const w = this.writers.get(jobId);
    if (w) return w.lastSeq;
    let fd: number;
    try {
      fd = fs.openSync(this.indexPath(jobId), 'r');
    } catch {
      return 0;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const whole = size - (size % RECORD);
      if (whole === 0) return 0;
      const record = Buffer.alloc(RECORD);
      fs.readSync(fd, record, 0, RECORD, whole - RECORD);
      return record.readDoubleLE(0);
    } finally {
      fs.closeSync(fd);
    }
  }

  private indexPath(jobId: string): string {
    return path.join(this.dir, `${jobId}.idx`);
  }

  size(jobId: string): number {
    try {
      return fs.statSync(this.logPath(jobId)).size;
    } catch {
      return 0;
    }
  }

  /** Bytes of a job's log from `offset`, at most `max` of them (logs are never read whole). */
  read(jobId: string, offset: number, max = 1 << 20): Buffer {
    let fd: number;
    try {
      fd = fs.openSync(this.logPath(jobId), 'r');
    } catch {
      return Buffer.alloc(0);
    }
    try {
      const buf = Buffer.alloc(max);
      const n = fs.readSync(fd, buf, 0, max, offset);
      return buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  }

  close(jobId: string): void {
    const w = this.writers.get(jobId);
    if (!w) return;
    fs.closeSync(w.log);
    fs.closeSync(w.index);
    this.writers.delete(jobId);
  }

  closeAll(): void {
    for (const id of [...this.writers.keys()]) this.close(id);
  }

  private writer(jobId: string): Writer {
    let w = this.writers.get(jobId);
    if (w) return w;
    const index = fs.openSync(this.indexPath(jobId), 'a+');
    const indexSize = fs.fstatSync(index).size;
    let lastSeq = 0;
    let size = 0;
    const whole = indexSize - (indexSize % RECORD);
    if (whole > 0) {
      const record = Buffer.alloc(RECORD);
      fs.readSync(index, record, 0, RECORD, whole - RECORD);
      lastSeq = record.readDoubleLE(0);
      size = record.readDoubleLE(8);
    }
    const log = fs.openSync(this.logPath(jobId), 'a');
    // A crash between the two writes leaves log bytes the index does not know; cut them off.
    if (fs.fstatSync(log).size !== size) fs.ftruncateSync(log, size);
    if (whole !== indexSize) fs.ftruncateSync(index, whole);
    w = { log, index, lastSeq, size, indexSize: whole };
    this.writers.set(jobId, w);
    return w;
  }
}

/** Writes all of `bytes` (a write to a filling disk may take only part of them, and then fail). */
function writeAll(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
}
