import fs from 'node:fs';
import path from 'node:path';
import { ChunkRing } from './chunk-ring.js';
import type { LogChunk } from './log-streamer.js';

/** Each segment file holds about this much before a new one starts. */
const SEGMENT_BYTES = 16 * 1024 * 1024;
/**
 * Acknowledged segments kept open to be written again: making a file can take the disk 100 ms and
 * more, which a job printing fast must not wait for (the spool writes on the agent's event loop).
 */
const SPARE_SEGMENTS = 2;
/** Record header: seq (8 bytes) and length (4 bytes). */
const HEADER = 12;

interface Segment {
  file: string;
  fd: number;
  bytes: number;
  /** The highest seq written to it. */
  lastSeq: number;
}

/**
 * A job's log chunks that the server has not acknowledged yet, kept so they survive a lost
 * connection (and are resent after it) without growing the agent's memory: up to a few MB of them
 * in memory (while the socket keeps up, acks come within milliseconds, and the disk is never
 * touched: a synchronous write to a slow disk would hold up the agent), and past that in segment
 * files in the agent's work folder. A segment whose every chunk is
 * acknowledged is written again from its start (a few are kept for that), or deleted.
 * Past `limitBytes` of unacknowledged chunks, `push` returns a promise that settles when acks make
 * room: the log streamer then pauses the job rather than lose its output.
 */
export class LogSpool {
  private readonly segments: Segment[] = [];
  private readonly spare: Segment[] = [];
  private acked = 0;
  private unackedBytes = 0;
  private readonly memory: ChunkRing;
  private limitBytes: number;
  /** Each unacknowledged chunk, oldest first: where it is in memory (`inMemory`), else on disk (`seg`). */
  private readonly sizes: { seq: number; bytes: number; inMemory: boolean; seg?: Segment; pos: number }[] = [];
  private head = 0;
  private readonly waiters: (() => void)[] = [];
  private made = false;

  constructor(
    private readonly dir: string,
    limitBytes = 512 * 1024 * 1024,
    memoryBytes = 8 * 1024 * 1024,
  ) {
    this.limitBytes = limitBytes;
    this.memory = new ChunkRing(memoryBytes);
  }

  /**
   * For a producer whose pause costs nothing (its output waits in a file of its own): `push`
   * asks for a pause at three quarters of the memory, before anything has to go to disk (with
   * room left for what comes before the pause takes hold).
   */
  pauseWhenMemoryIsUsed(): void {
    this.limitBytes = Math.min(this.limitBytes, Math.floor((this.memory.size * 3) / 4));
  }

  /** The highest seq acknowledged so far. */
  get ackedSeq(): number {
    return this.acked;
  }

  /** Keeps a chunk until it is acknowledged; resolves once there is room for more. */
  push(chunk: LogChunk): Promise<void> | undefined {
    const bytes = HEADER + chunk.data.length;
    const pos = this.memory.put(chunk.data);
    if (pos !== undefined) this.sizes.push({ seq: chunk.seq, bytes, inMemory: true, pos });
    else this.sizes.push({ seq: chunk.seq, bytes, inMemory: false, ...this.write(chunk) });
    this.unackedBytes += bytes;
    if (this.unackedBytes < this.limitBytes) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Appends a chunk to the newest segment file. */
  private write(chunk: LogChunk): { seg: Segment; pos: number } {
    let seg = this.segments.at(-1);
    if (!seg || seg.bytes >= SEGMENT_BYTES) {
      seg = this.spare.pop() ?? this.newSegment(chunk.seq);
      this.segments.push(seg);
    }
    const pos = seg.bytes;
    const header = Buffer.alloc(HEADER);
    header.writeDoubleLE(chunk.seq, 0);
    header.writeUInt32LE(chunk.data.length, 8);
    fs.writeSync(seg.fd, header, 0, HEADER, pos);
    fs.writeSync(seg.fd, chunk.data, 0, chunk.data.length, pos + HEADER);
    seg.bytes += HEADER + chunk.data.length;
    seg.lastSeq = chunk.seq;
    return { seg, pos };
  }

  /** Forgets every chunk up to `seq`, deleting segments that hold nothing else. */
  ack(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = seq;
    while (this.head < this.sizes.length && this.sizes[this.head]!.seq <= seq) {
      const entry = this.sizes[this.head++]!;
      this.unackedBytes -= entry.bytes;
      // In memory, chunks are freed in the order they were put in: the order of their seqs.
      if (entry.inMemory) this.memory.shift();
    }
    if (this.head > 1024) {
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    while (this.segments.length > 0 && this.segments[0]!.lastSeq <= seq) {
      const seg = this.segments.shift()!;
      if (this.spare.length < SPARE_SEGMENTS) {
        seg.bytes = 0;
        seg.lastSeq = 0;
        this.spare.push(seg);
        continue;
      }
      fs.closeSync(seg.fd);
      fs.rmSync(seg.file, { force: true });
    }
    if (this.unackedBytes < this.limitBytes) for (const wake of this.waiters.splice(0)) wake();
  }

  /** The chunks not yet acknowledged, oldest first, those on disk read back one at a time (to resend); each valid until acknowledged. */
  *unacked(): Generator<LogChunk> {
    for (let i = this.head; i < this.sizes.length; i++) {
      const chunk = this.read(this.sizes[i]!.seq);
      if (chunk) yield chunk;
    }
  }

  /**
   * One unacknowledged chunk, read back from disk, or undefined when it is acknowledged or was never
   * pushed: a sender that is behind (after a reconnect, or waiting for acks) reads chunks one at a
   * time from where it is, without reading those before. Its bytes are valid until it is
   * acknowledged (in memory, the space is then used again): send them, do not keep them.
   */
  read(seq: number): LogChunk | undefined {
    const first = this.sizes[this.head];
    if (!first || seq <= this.acked) return undefined;
    // Chunks come with consecutive seqs, so the entry is found by subtraction.
    const entry = this.sizes[this.head + (seq - first.seq)];
    if (!entry || entry.seq !== seq) return undefined;
    if (entry.inMemory) return { seq, data: this.memory.view(entry.pos, entry.bytes - HEADER) };
    const data = Buffer.alloc(entry.bytes - HEADER);
    fs.readSync(entry.seg!.fd, data, 0, data.length, entry.pos + HEADER);
    return { seq, data };
  }

  private newSegment(firstSeq: number): Segment {
    if (!this.made) fs.mkdirSync(this.dir, { recursive: true });
    this.made = true;
    const file = path.join(this.dir, `${String(firstSeq).padStart(12, '0')}.spool`);
    return { file, fd: fs.openSync(file, 'w+'), bytes: 0, lastSeq: 0 };
  }

  /** Removes the spool (the job ended and its log is acknowledged, or it is given up). */
  close(): void {
    for (const seg of [...this.segments.splice(0), ...this.spare.splice(0)]) fs.closeSync(seg.fd);
    fs.rmSync(this.dir, { recursive: true, force: true });
    for (const wake of this.waiters.splice(0)) wake();
  }
}
