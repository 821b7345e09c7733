import { describe, expect, it } from 'vitest';
import { PtyProcess } from '../../agent/pty-process.js';

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
});
