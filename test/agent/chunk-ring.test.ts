import { describe, expect, it } from 'vitest';
import { ChunkRing } from '../../agent/chunk-ring.js';

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('ChunkRing', () => {
  it('keeps what is put in until the oldest is freed, going round the buffer, and refuses what has no room', () => {
    const ring = new ChunkRing(100);
    const a = ring.put(bytes(40, 1))!;
    const b = ring.put(bytes(40, 2))!;
    expect(ring.put(bytes(30, 3))).toBeUndefined(); // 20 left at the end, none at the start
    ring.shift(); // a freed: 40 at the start
    const c = ring.put(bytes(30, 3))!;
    expect(c).toBe(0); // round to the start
    expect(ring.put(bytes(15, 4))).toBeUndefined(); // 10 left before b
    const d = ring.put(bytes(10, 4))!;
    expect(d).toBe(30);
    expect(ring.view(b, 40).equals(bytes(40, 2))).toBe(true);
    expect(ring.view(c, 30).equals(bytes(30, 3))).toBe(true);
    expect(ring.view(d, 10).equals(bytes(10, 4))).toBe(true);
    expect(a).toBe(0);
    ring.shift();
    ring.shift();
    ring.shift();
    // Empty again: the whole buffer is room.
    expect(ring.put(bytes(100, 5))).toBe(0);
    expect(ring.put(bytes(1, 6))).toBeUndefined();
  });

  it('copies what it keeps: the caller may reuse its buffer', () => {
    const ring = new ChunkRing(16);
    const source = Buffer.from('hello');
    const at = ring.put(source)!;
    source.fill(0);
    expect(ring.view(at, 5).toString()).toBe('hello');
  });
});
