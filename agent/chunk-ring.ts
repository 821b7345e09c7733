/**
 * Byte ranges kept first-in first-out in one buffer, allocated once: chunks are copied in, and the
 * oldest freed. Holding a job's unacknowledged log here, rather than the buffers it was read into,
 * lets those die young: held until an ack, they would outlive a few scavenges, move to the old
 * generation, and cost the agent a full garbage collection every few tens of megabytes.
 */
export class ChunkRing {
  private buf: Buffer | undefined;
  private readonly live: { pos: number; len: number }[] = [];
  private head = 0;
  /** Where the next range goes. */
  private tail = 0;

  constructor(readonly size: number) {}

  /** Copies `data` in and returns where it is, or undefined when there is no room for it. */
  put(data: Buffer): number | undefined {
    const len = data.length;
    if (len === 0 || len > this.size) return undefined;
    let pos: number;
    if (this.head === this.live.length) pos = 0;
    else {
      const start = this.live[this.head]!.pos;
      if (this.tail > start) pos = this.tail + len <= this.size ? this.tail : len <= start ? 0 : -1;
      else pos = this.tail + len <= start ? this.tail : -1; // wrapped: the room is between the two
      if (pos < 0) return undefined;
    }
    // Allocated when first used, and never filled: pages come as chunks are written.
    this.buf ??= Buffer.allocUnsafeSlow(this.size);
    data.copy(this.buf, pos);
    this.tail = pos + len;
    this.live.push({ pos, len });
    return pos;
  }

  /** The bytes of a range put in, valid until it is freed. */
  view(pos: number, len: number): Buffer {
    return this.buf!.subarray(pos, pos + len);
  }

  /** Frees the oldest range. */
  shift(): void {
    if (this.head === this.live.length) return;
    this.head++;
    if (this.head === this.live.length) {
      this.live.length = 0;
      this.head = 0;
      this.tail = 0;
    } else if (this.head > 1024) {
      this.live.splice(0, this.head);
      this.head = 0;
    }
  }
}
