import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnPty, type PtyBackend, type PtyProcessOptions } from '../../agent/pty-process.js';
import { isUtilLinuxScript } from '../../agent/pty/script-process.js';
import { removeTempDirs, ROOT, tempDir, waitFor } from '../helpers/cli.js';

function run(backend: PtyBackend, script: string, more: Partial<PtyProcessOptions> = {}) {
  const chunks: Buffer[] = [];
  const p = spawnPty({ file: 'bash', args: ['-c', script], cwd: process.cwd(), env: process.env as Record<string, string>, onData: (d) => chunks.push(Buffer.from(d)), ...more }, backend);
  return { p, out: () => Buffer.concat(chunks).toString() };
}

afterAll(removeTempDirs);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

describe.each(['script', 'node-pty'] as const)('PtyProcess made by %s', (backend) => {
  it('runs a command under a 120×40 xterm and reports its exit code', async () => {
    const { p, out } = run(backend, 'test -t 1 && echo on-a-tty; echo "size=$(stty size) term=$TERM"; exit 3');
    expect((await p.exited).exitCode).toBe(3);
    expect(out()).toContain('on-a-tty');
    expect(out()).toContain('size=40 120 term=xterm-256color');
  });

  it('hands on every byte in order, the last line without a newline too, before it reports the exit', async () => {
    const { p, out } = run(backend, 'seq 1 300000; printf the-end');
    await p.exited;
    const expected = Array.from({ length: 300000 }, (_, i) => `${i + 1}\r\n`).join('') + 'the-end';
    expect(out() === expected).toBe(true);
  });

  it('keeps the end of the output when the process exits while reading is held up', async () => {
    const { p, out } = run(backend, 'for i in $(seq 1 200); do echo "line $i"; done; echo the-end');
    p.pause();
    // What was read before the pause took hold still comes; then nothing, for longer than
    // node-pty waits after the exit before dropping the socket.
    await new Promise((r) => setTimeout(r, 50));
    const before = out().length;
    await new Promise((r) => setTimeout(r, 600));
    // node-pty's pause holds its socket, but what it reads when the pty closes still comes.
    if (backend === 'script') expect(out().length).toBe(before);
    p.resume();
    await p.exited;
    expect(out()).toContain('line 200');
    expect(out().trimEnd().endsWith('the-end')).toBe(true);
  });

  it('reports a death by signal as 128 + the signal', async () => {
    const { p } = run(backend, 'kill -KILL $$');
    const exit = await p.exited;
    expect(exit.exitCode === 137 || exit.signal === 9).toBe(true);
  });

  it('sends a signal to the whole process group: the shell and what it runs', async () => {
    const { p, out } = run(backend, 'trap "echo got-int; exit 130" INT; sleep 300 & echo "bg=$!"; sleep 300; echo not-here');
    await waitFor(() => /bg=\d+/.test(out()), 10_000, 'the job to start');
    const bg = Number(/bg=(\d+)/.exec(out())![1]);
    p.signal('SIGINT');
    expect((await p.exited).exitCode).toBe(130);
    expect(out()).toContain('got-int');
    expect(out()).not.toContain('not-here');
    await waitFor(() => !alive(bg), 5000, 'the background sleep to end');
  });

  it('ends a command stopped the moment it was started', async () => {
    const { p } = run(backend, 'sleep 300');
    p.signal('SIGTERM');
    const exit = await Promise.race([p.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(exit).not.toBe('hung');
  });

  it('kills what the command left running in the background when it exits', async () => {
    // The second ignores SIGHUP, so the terminal closing does not end it.
    const { p, out } = run(backend, 'sleep 300 & echo "bg=$!"; (trap "" HUP; exec sleep 300) & echo "bg=$!"; exit 0');
    expect((await p.exited).exitCode).toBe(0);
    const pids = [...out().matchAll(/bg=(\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(2);
    await waitFor(() => pids.every((pid) => !alive(pid)), 5000, 'the background processes to end');
  });

  it('ends the command when the process that started it is killed outright', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/pty-job.ts'), backend, 'echo "job=$$"; sleep 300'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    child.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    const job = Number((await waitFor(() => /job=(\d+)/.exec(said)?.[1], 20_000, 'the job to start')));
    child.kill('SIGKILL');
    await waitFor(() => !alive(job), 10_000, 'the job to end with its parent');
  });

  it("keeps the command's own SHELL", async () => {
    const { p, out } = run(backend, 'echo "shell=[${SHELL-unset}]"', { env: { ...(process.env as Record<string, string>), SHELL: '/opt/my shell' } });
    await p.exited;
    expect(out()).toContain('shell=[/opt/my shell]');
    const { env } = process;
    const noShell = Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'SHELL')) as Record<string, string>;
    // bash sets SHELL for itself where it is unset, but does not export it.
    const second = run(backend, 'env | grep -c "^SHELL=" || true', { env: noShell });
    await second.p.exited;
    expect(second.out().trim()).toBe('0');
  });
});

describe('the script backend', () => {
  it('is chosen only for util-linux script 2.35 or later', () => {
    expect(isUtilLinuxScript('script from util-linux 2.38.1\n')).toBe(true);
    expect(isUtilLinuxScript('script from util-linux 2.35\n')).toBe(true);
    expect(isUtilLinuxScript('script from util-linux 2.34\n')).toBe(false);
    expect(isUtilLinuxScript('script from util-linux 3.0\n')).toBe(true);
    expect(isUtilLinuxScript('script: illegal option -- -\nusage: script [-aeFkqr] [-t time] [file [command ...]]')).toBe(false);
  });

  it('is what this machine runs jobs with', () => {
    // The CI machine has util-linux; the fallback is tested above all the same.
    expect(execFileSync('script', ['--version'], { encoding: 'utf8' })).toMatch(/util-linux/);
  });

  it('leaves no file behind', async () => {
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('dstack-pty-')).length;
    const { p } = run('script', 'echo hi');
    await p.exited;
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('dstack-pty-')).length).toBe(before);
  });

  it('runs `script` in a session of its own, so a Ctrl+C meant for the caller never reaches it', async () => {
    const { p, out } = run('script', 'echo "script-pgid=$(ps -o pgid= -p $PPID | tr -d " ")"');
    await p.exited;
    const own = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[2];
    const theirs = /script-pgid=(\d+)/.exec(out())![1];
    expect(theirs).not.toBe(own);
  });

  it('stops a command whose unread output passes the limit while paused, and lets it go on when resumed', async () => {
    const { p, out } = run('script', 'echo "job=$$"; for i in $(seq 1 40); do head -c 200000 /dev/zero | tr "\\0" x; echo; sleep 0.1; done; echo the-end', { backlogLimitBytes: 1024 * 1024 });
    const job = Number(await waitFor(() => /job=(\d+)/.exec(out())?.[1], 10_000, 'the job to start'));
    p.pause();
    const stopped = () => / T /.test(fs.readFileSync(`/proc/${job}/stat`, 'utf8').split(')')[1]!);
    await waitFor(stopped, 10_000, 'the job to be stopped');
    p.resume();
    await p.exited;
    expect(out().split('\r\n').filter((l) => l === 'x'.repeat(200_000))).toHaveLength(40);
    expect(out().trimEnd().endsWith('the-end')).toBe(true);
  });

  it('keeps its copy of the output in the folder it is given, while the command runs', async () => {
    const dir = tempDir();
    const { p, out } = run('script', 'echo started; sleep 300', { stateDir: dir });
    await waitFor(() => out().includes('started'), 10_000, 'the command to start');
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('dstack-pty-'))).toHaveLength(1);
    p.signal('SIGKILL');
    await p.exited;
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('starts a command whose own PATH has no script on it', async () => {
    const { p, out } = run('script', 'echo "path=$PATH"', { file: '/bin/bash', env: { PATH: '/nowhere' } } as Partial<PtyProcessOptions>);
    expect((await p.exited).exitCode).toBe(0);
    expect(out()).toContain('path=/nowhere');
  });
});
