import { describe, expect, it, vi } from 'vitest';
import { FLUSH_INTERVAL_MS, LogStreamer, MAX_CHUNK_BYTES, type LogChunk } from '../../agent/log-streamer.js';

describe('LogStreamer', () => {
  it('cuts output into sequenced chunks of bounded size, with no gaps', () => {
    const chunks: LogChunk[] = [];
    const s = new LogStreamer((c) => void chunks.push(c));
    s.write(Buffer.alloc(MAX_CHUNK_BYTES * 2 + 10, 'x'));
    s.flush();
    expect(chunks.map((c) => [c.seq, c.data.length])).toEqual([
      [1, MAX_CHUNK_BYTES],
      [2, MAX_CHUNK_BYTES],
      [3, 10],
    ]);
  });

  it('flushes a small write within the flush interval', () => {
    vi.useFakeTimers();
    try {
      const chunks: LogChunk[] = [];
      const s = new LogStreamer((c) => void chunks.push(c));
      s.write('hello\n');
      s.write('world\n');
      vi.advanceTimersByTime(FLUSH_INTERVAL_MS - 1);
      expect(chunks).toHaveLength(0);
      vi.advanceTimersByTime(1);
      expect(chunks.map((c) => [c.seq, c.data.toString()])).toEqual([[1, 'hello\nworld\n']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps its own copy of what waits for the flush, since a writer reads into the same buffer again', () => {
    vi.useFakeTimers();
    try {
      const chunks: string[] = [];
      const s = new LogStreamer((c) => void chunks.push(c.data.toString()));
      const buffer = Buffer.alloc(6);
      for (const line of ['first\n', 'other\n']) {
        buffer.write(line);
        s.write(buffer);
      }
      buffer.write('later\n');
      vi.advanceTimersByTime(FLUSH_INTERVAL_MS);
      expect(chunks).toEqual(['first\nother\n']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('pauses the producer while the sink is behind, and drains before the end', async () => {
    const events: string[] = [];
    let release!: () => void;
    const s = new LogStreamer(
      (c) => {
        events.push(`chunk ${c.seq}`);
        return c.seq === 1 ? new Promise<void>((r) => (release = r)) : undefined;
      },
      (paused) => events.push(paused ? 'pause' : 'resume'),
    );
    s.write('a');
    s.flush();
    s.write('b');
    const drained = s.drain().then(() => events.push('drained'));
    // drain() flushed chunk 2 at once; nothing acknowledged chunk 1, so the producer stays paused.
    expect(events).toEqual(['chunk 1', 'pause', 'chunk 2']);
    release();
    await drained;
    expect(events).toEqual(['chunk 1', 'pause', 'chunk 2', 'resume', 'drained']);
  });
});

describe('LogStreamer.drain', () => {
  /** A sink that holds every chunk until the test acknowledges it, as a remote server does. */
  function heldSink() {
    const held = new Map<number, { ack: () => void; nack: (err: Error) => void }>();
    const sink = (c: LogChunk) =>
      new Promise<void>((ack, nack) => {
        held.set(c.seq, { ack, nack });
      });
    return { held, sink };
  }

  it('waits for every unacknowledged chunk, not only the first', async () => {
    const { held, sink } = heldSink();
    const s = new LogStreamer(sink);
    s.write('one');
    s.flush();
    s.write('two');
    let drained = false;
    const done = s.drain().then((r) => {
      drained = true;
      return r;
    });
    await new Promise((r) => setImmediate(r));
    expect([...held.keys()]).toEqual([1, 2]);
    held.get(1)!.ack();
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    held.get(2)!.ack();
    expect(await done).toEqual({ sent: 2, failed: 0 });
  });

  it('counts chunks the sink failed to take, whether it rejected or threw, without an unhandled rejection', async () => {
    const { held, sink } = heldSink();
    let calls = 0;
    const s = new LogStreamer((c) => {
      if (++calls === 3) throw new Error('disk full');
      return sink(c);
    });
    for (const part of ['a', 'b', 'c']) {
      s.write(part);
      s.flush();
    }
    held.get(1)!.nack(new Error('connection closed'));
    held.get(2)!.ack();
    const result = await s.drain();
    expect(result.sent).toBe(3);
    expect(result.failed).toBe(2);
    expect((result.error as Error).message).toBe('disk full');
  });

  it('pauses the producer once while any chunk is unacknowledged, and resumes once all are', async () => {
    const { held, sink } = heldSink();
    const events: string[] = [];
    const s = new LogStreamer(sink, (paused) => events.push(paused ? 'pause' : 'resume'));
    s.write(Buffer.alloc(MAX_CHUNK_BYTES * 2, 'x'));
    expect(events).toEqual(['pause']);
    held.get(2)!.ack();
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['pause']);
    held.get(1)!.ack();
    await s.drain();
    expect(events).toEqual(['pause', 'resume']);
  });
});
