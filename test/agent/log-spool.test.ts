import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogSpool } from '../../agent/log-spool.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function spoolDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-spool-'));
  dirs.push(d);
  return path.join(d, 'job-1');
}
const chunk = (seq: number, size = 10) => ({ seq, data: Buffer.alloc(size, seq % 256) });

describe('LogSpool', () => {
  it('gives back every unacknowledged chunk, in order, byte for byte', () => {
    const spool = new LogSpool(spoolDir());
    for (let seq = 1; seq <= 5; seq++) spool.push({ seq, data: Buffer.from(`line ${seq}\n`) });
    spool.ack(2);
    expect([...spool.unacked()].map((c) => [c.seq, c.data.toString()])).toEqual([
      [3, 'line 3\n'],
      [4, 'line 4\n'],
      [5, 'line 5\n'],
    ]);
    spool.ack(5);
    expect([...spool.unacked()]).toEqual([]);
    spool.close();
  });

  it('reads back one unacknowledged chunk by its seq, and nothing for an acknowledged or unknown one', () => {
    const spool = new LogSpool(spoolDir());
    // A job that runs again goes on from where its log stopped: seqs need not start at 1.
    for (let seq = 7; seq <= 10; seq++) spool.push({ seq, data: Buffer.from(`line ${seq}\n`) });
    expect(spool.read(9)?.data.toString()).toBe('line 9\n');
    expect(spool.read(7)?.data.toString()).toBe('line 7\n');
    expect([spool.read(6), spool.read(11)]).toEqual([undefined, undefined]);
    spool.ack(8);
    expect(spool.read(8)).toBeUndefined();
    expect(spool.read(10)).toEqual({ seq: 10, data: Buffer.from('line 10\n') });
    spool.close();
  });

  it('keeps the newest chunks in memory and writes the disk only past that, while acks lag behind', () => {
    const dir = spoolDir();
    const spool = new LogSpool(dir, undefined, 4 * 65536);
    // Acked as fast as it prints: nothing is written, no folder is made.
    for (let seq = 1; seq <= 100; seq++) {
      spool.push(chunk(seq, 65536));
      spool.ack(seq - 2);
    }
    expect(fs.existsSync(dir)).toBe(false);
    // The server away: past four chunks in memory, the rest goes to disk; all read back in order.
    for (let seq = 101; seq <= 110; seq++) spool.push(chunk(seq, 65536));
    expect(fs.readdirSync(dir)).toHaveLength(1);
    expect([...spool.unacked()].map((c) => c.seq)).toEqual(Array.from({ length: 12 }, (_, i) => 99 + i));
    expect([...spool.unacked()].every((c) => c.data.equals(chunk(c.seq, 65536).data))).toBe(true);
    // Acks free memory again: new chunks stay in memory while older ones are still on disk.
    spool.ack(102);
    const sizeOnDisk = fs.statSync(path.join(dir, fs.readdirSync(dir)[0]!)).size;
    spool.push(chunk(111, 65536));
    expect(fs.statSync(path.join(dir, fs.readdirSync(dir)[0]!)).size).toBe(sizeOnDisk);
    expect(spool.read(111)?.data.equals(chunk(111, 65536).data)).toBe(true);
    expect([...spool.unacked()].map((c) => c.seq)).toEqual(Array.from({ length: 9 }, (_, i) => 103 + i));
    spool.close();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('keeps chunks on disk, and writes acknowledged segments again rather than making new files', () => {
    const dir = spoolDir();
    const spool = new LogSpool(dir, undefined, 0);
    // 64 KiB chunks: a 16 MiB segment holds 255 of them.
    for (let seq = 1; seq <= 600; seq++) spool.push(chunk(seq, 65536));
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(3);
    spool.ack(300);
    expect([...spool.unacked()].map((c) => c.seq)).toEqual(Array.from({ length: 300 }, (_, i) => 301 + i));
    spool.ack(600);
    // Two acknowledged segments stay for reuse; the third is deleted.
    expect(fs.readdirSync(dir)).toHaveLength(2);
    // A long job's log goes round through the same files, never making another.
    for (let seq = 601; seq <= 1500; seq++) {
      spool.push(chunk(seq, 65536));
      if (seq % 100 === 0) spool.ack(seq - 50);
    }
    expect(fs.readdirSync(dir).every((f) => files.includes(f))).toBe(true);
    expect([...spool.unacked()].map((c) => c.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 1451 + i));
    expect([...spool.unacked()].every((c) => c.data.equals(chunk(c.seq, 65536).data))).toBe(true);
    expect(spool.read(1460)?.data.equals(chunk(1460, 65536).data)).toBe(true);
    spool.close();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('asks the producer to wait past its limit, until acknowledgements make room', async () => {
    const spool = new LogSpool(spoolDir(), 100);
    expect(spool.push(chunk(1, 40))).toBeUndefined();
    const full = spool.push(chunk(2, 60));
    expect(full).toBeInstanceOf(Promise);
    let resumed = false;
    void full!.then(() => (resumed = true));
    spool.ack(1);
    await new Promise((r) => setImmediate(r));
    expect(resumed).toBe(true);
    expect(spool.ackedSeq).toBe(1);
    spool.close();
  });

  it('for a producer that waits for free, asks it to wait once its memory is three quarters used, and never writes the disk', async () => {
    const dir = spoolDir();
    const spool = new LogSpool(dir, undefined, 8 * 65536);
    spool.pauseWhenMemoryIsUsed();
    const waits = Array.from({ length: 8 }, (_, i) => spool.push(chunk(i + 1, 65536)));
    // Six chunks of memory's eight, and a little: the sixth asks for the pause; what comes before it takes hold still fits.
    expect(waits.map((w) => w instanceof Promise)).toEqual([false, false, false, false, false, true, true, true]);
    expect(fs.existsSync(dir)).toBe(false);
    let resumed = false;
    void Promise.all(waits).then(() => (resumed = true));
    spool.ack(4);
    await new Promise((r) => setImmediate(r));
    expect(resumed).toBe(true);
    expect([...spool.unacked()].map((c) => c.seq)).toEqual([5, 6, 7, 8]);
    spool.close();
  });
});
