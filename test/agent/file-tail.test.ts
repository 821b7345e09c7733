import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileTail } from '../../agent/pty/file-tail.js';
import { removeTempDirs, tempDir, waitFor } from '../helpers/cli.js';

afterAll(removeTempDirs);

describe('FileTail', () => {
  it('hands on what a writer adds, in order, and settles once the writer has ended and all is read', async () => {
    const file = path.join(tempDir(), 'out');
    const fd = fs.openSync(file, 'w');
    const got: Buffer[] = [];
    const tail = new FileTail(file, (d) => got.push(Buffer.from(d)));
    for (let i = 0; i < 50; i++) {
      fs.writeSync(fd, `line ${i}\n`);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 30));
    }
    fs.closeSync(fd);
    tail.writerEnded();
    await tail.done;
    expect(Buffer.concat(got).toString()).toBe(Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(''));
  });

  it('reads nothing while paused, and settles only after a resume has read the rest', async () => {
    const file = path.join(tempDir(), 'out');
    fs.writeFileSync(file, 'before\n');
    let got = '';
    const tail = new FileTail(file, (d) => (got += d));
    await waitFor(() => got === 'before\n', 5000, 'the first line');
    tail.pause();
    fs.appendFileSync(file, 'after\n');
    tail.writerEnded();
    let settled = false;
    void tail.done.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBe('before\n');
    expect(settled).toBe(false);
    tail.resume();
    await tail.done;
    expect(got).toBe('before\nafter\n');
  });

  it('gives back the disk space of what it has read as it goes', async () => {
    const file = path.join(tempDir(), 'out');
    const mb = Buffer.alloc(1024 * 1024, 'x');
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 80; i++) fs.writeSync(fd, mb);
    fs.closeSync(fd);
    let bytes = 0;
    const tail = new FileTail(file, (d) => (bytes += d.length));
    tail.writerEnded();
    await tail.done;
    expect(bytes).toBe(80 * mb.length);
    // The first 64 MiB read are punched out; the size stays, so a writer appending is unaffected.
    await waitFor(() => fs.statSync(file).blocks * 512 <= 20 * mb.length, 10_000, 'the read part to be punched out');
    expect(fs.statSync(file).size).toBe(80 * mb.length);
  });
});
