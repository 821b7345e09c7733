import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PtyProcess } from '../../agent/pty-process.js';
import { waitFor } from '../helpers/cli.js';

describe('PtyProcess', () => {
  it('runs a command under a terminal and reports its exit code', async () => {
    let out = '';
    const p = new PtyProcess({ file: 'bash', args: ['-c', 'test -t 1 && echo on-a-tty; exit 3'], cwd: process.cwd(), env: process.env as Record<string, string>, onData: (d) => (out += d) });
    expect((await p.exited).exitCode).toBe(3);
    expect(out).toContain('on-a-tty');
  });

  it('keeps the end of the output when the process exits while reading is held up', async () => {
    const chunks: Buffer[] = [];
    const p = new PtyProcess({
      file: 'bash',
      args: ['-c', 'for i in $(seq 1 200); do echo "line $i"; done; echo the-end'],
      cwd: process.cwd(),
      env: process.env as Record<string, string>,
      onData: (d) => chunks.push(d),
    });
    // Nothing is read for longer than node-pty waits after the exit before dropping the socket.
    p.pause();
    await new Promise((r) => setTimeout(r, 600));
    p.resume();
    await p.exited;
    const out = Buffer.concat(chunks).toString();
    expect(out).toContain('line 200');
    expect(out.trimEnd().endsWith('the-end')).toBe(true);
  });

  it('kills what the command left running in the background when it exits', async () => {
    let out = '';
    const p = new PtyProcess({
      file: 'bash',
      // The second ignores SIGHUP, so the terminal closing does not end it.
      args: ['-c', 'sleep 300 & echo "bg=$!"; (trap "" HUP; exec sleep 300) & echo "bg=$!"; exit 0'],
      cwd: process.cwd(),
      env: process.env as Record<string, string>,
      onData: (d) => (out += d),
    });
    expect((await p.exited).exitCode).toBe(0);
    const pids = [...out.matchAll(/bg=(\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(2);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    };
    await waitFor(() => pids.every((pid) => !alive(pid)), 5000, 'the background processes to end');
  });
});
