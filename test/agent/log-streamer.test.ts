import { describe, expect, it } from 'vitest';
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

  it('flushes a small write within the flush interval', async () => {
    const chunks: LogChunk[] = [];
    const s = new LogStreamer((c) => void chunks.push(c));
    s.write('hello\n');
    expect(chunks).toHaveLength(0);
    await new Promise((r) => setTimeout(r, FLUSH_INTERVAL_MS + 50));
    expect(chunks.map((c) => c.data.toString())).toEqual(['hello\n']);
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
    await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual(['chunk 1', 'pause', 'chunk 2']);
    release();
    await drained;
    expect(events).toEqual(['chunk 1', 'pause', 'chunk 2', 'resume', 'drained']);
  });
});
