import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { shellJoin, shellQuote } from '../../shared/shell-quote.js';
import type { PtyExit, PtyProcess, PtyProcessOptions } from '../pty-process.js';
import { resolveOnPath } from '../resolve-on-path.js';
import { FileTail } from './file-tail.js';
import { killGroup, signalGroup } from './kill-group.js';
import { TERMINAL } from './terminal.js';

let found: string | null | undefined;

/**
 * Whether `script` here is util-linux's, 2.35 or later: the one whose flags this uses, and which
 * runs a command to its end with standard input at end-of-file (older ones could stop early).
 */
export function utilLinuxScript(): boolean {
  return scriptPath() !== null;
}

/** Where that `script` is, found once on this process's PATH (a job's own PATH may lack it). */
function scriptPath(): string | null {
  if (found === undefined) {
    const file = resolveOnPath('script', process.env.PATH ?? '');
    try {
      found = isUtilLinuxScript(execFileSync(file, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })) ? file : null;
    } catch {
      found = null;
    }
  }
  return found;
}

/** Reads `script --version`: util-linux 2.35 or later. */
export function isUtilLinuxScript(versionText: string): boolean {
  const version = /util-linux (\d+)\.(\d+)/.exec(versionText);
  return !!version && (Number(version[1]) > 2 || (Number(version[1]) === 2 && Number(version[2]) >= 35));
}

/**
 * A PtyProcess made by util-linux `script`, which copies the pty into a file in C, as fast as the
 * command writes: the command never waits on this process, however busy its event loop. The file
 * is followed from here (FileTail) and removed at the end. Like `script -qfec CMD /dev/null` typed
 * by hand, with the terminal's size set and the session's leader known (its pid written first,
 * before the command replaces the shell), so signals reach the command's whole process group.
 */
export class ScriptPtyProcess implements PtyProcess {
  readonly exited: Promise<PtyExit>;
  readonly pauseIsFree = true;
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly tail: FileTail;
  private leader: number | undefined;
  private done = false;

  constructor(options: PtyProcessOptions) {
    this.dir = fs.mkdtempSync(path.join(options.stateDir ?? os.tmpdir(), 'dstack-pty-'));
    const out = path.join(this.dir, 'out');
    const fd = fs.openSync(out, 'w', 0o600);
    // `script` runs its command with $SHELL: a known shell here, and the job's own SHELL put back.
    const shell = options.env.SHELL;
    const command = [
      `echo $$ > ${shellQuote(this.pidFile)}`,
      `stty cols ${TERMINAL.cols} rows ${TERMINAL.rows} 2>/dev/null`,
      shell === undefined ? 'unset SHELL' : `SHELL=${shellQuote(shell)}`,
      `exec ${shellJoin([options.file, ...options.args])}`,
    ].join('; ');
    try {
      this.child = spawn(scriptPath() ?? 'script', ['-qfec', command, '/dev/null'], {
        cwd: options.cwd,
        env: { ...options.env, SHELL: '/bin/sh', TERM: TERMINAL.name },
        // `script`'s own complaints (no pty left) land in the output too, where the user looks.
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    this.tail = new FileTail(out, options.onData);
    this.exited = new Promise((resolve) => {
      let ended = false;
      const end = (exit: PtyExit) => {
        if (ended) return;
        ended = true;
        this.done = true;
        // Nothing a job started outlives it: what it left running in the background (`server &`,
        // a daemon that kept its process group) is killed with the group.
        const leader = this.readLeader();
        if (leader) killGroup(leader);
        this.tail.writerEnded();
        void this.tail.done.then(() => {
          fs.rmSync(this.dir, { recursive: true, force: true });
          resolve(exit);
        });
      };
      this.child.once('exit', (code, signal) => end(code !== null ? { exitCode: code } : { exitCode: 128 + (os.constants.signals[signal!] ?? 0), signal: os.constants.signals[signal!] }));
      this.child.once('error', (err) => {
        options.onData(Buffer.from(`dstack: could not start the job's terminal: ${err.message}\r\n`));
        end({ exitCode: 127 });
      });
    });
  }

  private get pidFile(): string {
    return path.join(this.dir, 'pid');
  }

  /** The pid of the session's leader (the command itself), once it has written it. */
  private readLeader(): number | undefined {
    if (this.leader === undefined) {
      try {
        const pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
        if (Number.isInteger(pid) && pid > 1) this.leader = pid;
      } catch {
        // Not written yet.
      }
    }
    return this.leader;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.done) return;
    const leader = this.readLeader();
    // Before the command has started, `script` itself: it passes an interrupt or a terminate on
    // to its child, and when it is killed the pty closes and the child hangs up.
    if (leader) signalGroup(leader, sig);
    else if (this.child.pid) signalGroup(this.child.pid, sig);
  }

  pause(): void {
    this.tail.pause();
  }

  resume(): void {
    this.tail.resume();
  }
}
