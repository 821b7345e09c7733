import { execFileSync, spawn, type ChildProcess, type ExecFileSyncOptionsWithStringEncoding } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { shellJoin, shellQuote } from '../../shared/shell-quote.js';
import type { PtyExit, PtyProcess, PtyProcessOptions, RunAs } from '../pty-process.js';
import { resolveOnPath } from '../resolve-on-path.js';
import { FileTail } from './file-tail.js';
import { killGroup, signalGroup } from './kill-group.js';
import { TERMINAL } from './terminal.js';

/** The tools, found once on this process's PATH (a job's own PATH may lack them). */
interface Tools {
  script: string;
  /** `setpriv`, where it has --pdeathsig (util-linux 2.33): `script` then dies with this process. */
  setpriv?: string;
  stty: string;
}
let found: Tools | null | undefined;

/** Past this much output not yet read (the log paused while the server is away), the job is stopped (SIGSTOP) until it is read. */
const BACKLOG_LIMIT_BYTES = 512 * 1024 * 1024;

/**
 * Whether `script` here is util-linux's, 2.35 or later: the one whose flags this uses, and which
 * runs a command to its end with standard input at end-of-file (older ones could stop early).
 */
export function utilLinuxScript(): boolean {
  return tools() !== null;
}

function tools(): Tools | null {
  if (found === undefined) {
    const PATH = process.env.PATH ?? '';
    const script = resolveOnPath('script', PATH);
    const quiet: ExecFileSyncOptionsWithStringEncoding = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 };
    try {
      found = isUtilLinuxScript(execFileSync(script, ['--version'], quiet)) ? { script, stty: resolveOnPath('stty', PATH) } : null;
    } catch {
      found = null;
    }
    if (found) {
      const setpriv = resolveOnPath('setpriv', PATH);
      try {
        execFileSync(setpriv, ['--pdeathsig', 'KILL', 'true'], quiet);
        found.setpriv = setpriv;
      } catch {
        // Without it, a killed agent leaves `script` and the job running until the next agent kills them.
      }
    }
  }
  return found;
}

/**
 * Why commands cannot be run as another user here (the caller being root), or undefined when they
 * can: that needs util-linux `script` (the pty is made as root, then the command switches) and `setpriv`.
 */
export function switchUserProblem(): string | undefined {
  const t = tools();
  if (!t) return "util-linux 'script' 2.35 or later is not on PATH";
  if (!t.setpriv) return "util-linux 'setpriv' 2.33 or later is not on PATH";
  return undefined;
}

/**
 * The command as the session's leader runs it: under `setpriv` to another user's ids and groups,
 * so the shell that wrote the leader's pid (as root, where the job cannot change it) becomes the
 * job, still the session's leader. Also what the agent runs as the job's user in the job's folder
 * after it (tar of its artifacts).
 */
export function asUser(runAs: RunAs | undefined, command: string[]): string[] {
  if (!runAs) return command;
  // Found: the agent refuses --run-as without setpriv at its start (switchUserProblem).
  return [tools()!.setpriv!, '--reuid', String(runAs.uid), '--regid', String(runAs.gid), '--init-groups', '--', ...command];
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
  /** The job is stopped (SIGSTOP) because too much of its output waits unread. */
  private held = false;
  private backlogTimer: NodeJS.Timeout | undefined;
  private readonly backlogLimit: number;

  constructor(options: PtyProcessOptions) {
    // The agent checked this at its start (switchUserProblem).
    if (options.runAs && !tools()?.setpriv) throw new Error(`cannot run a job as ${options.runAs.user}: util-linux 'setpriv' is not on PATH`);
    this.dir = fs.mkdtempSync(path.join(options.stateDir ?? os.tmpdir(), 'dstack-pty-'));
    const out = path.join(this.dir, 'out');
    const fd = fs.openSync(out, 'w', 0o600);
    const t = tools() ?? { script: 'script', stty: 'stty' };
    this.backlogLimit = options.backlogLimitBytes ?? BACKLOG_LIMIT_BYTES;
    // `script` runs its command with $SHELL: a known shell here, and the job's own SHELL put back.
    const shell = options.env.SHELL;
    const command = [
      `echo $$ > ${shellQuote(this.pidFile)}`,
      `${shellQuote(t.stty)} cols ${TERMINAL.cols} rows ${TERMINAL.rows} 2>/dev/null`,
      shell === undefined ? 'unset SHELL' : `SHELL=${shellQuote(shell)}`,
      `exec ${shellJoin(asUser(options.runAs, [options.file, ...options.args]))}`,
    ].join('; ');
    try {
      const scriptArgs = ['-qfec', command, '/dev/null'];
      // A session of its own, as node-pty gives: a Ctrl+C meant for this process never reaches
      // `script` (it would pass a SIGTERM on to the job at once, not the stop's SIGINT and grace).
      this.child = spawn(t.setpriv ?? t.script, t.setpriv ? ['--pdeathsig', 'KILL', t.script, ...scriptArgs] : scriptArgs, {
        detached: true,
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
      const end = (exit: PtyExit) => {
        if (this.done) return;
        this.done = true;
        clearInterval(this.backlogTimer);
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
      this.child.once('exit', (code, signal) => {
        const signo = signal ? os.constants.signals[signal] : undefined;
        end(code !== null ? { exitCode: code } : { exitCode: 128 + (signo ?? 0), signal: signo });
      });
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
    // A stopped job takes no signal but SIGKILL until it is continued.
    if (this.held) this.hold(false);
  }

  /** Reading is held up: the job goes on into the file, until what waits there passes the limit. */
  pause(): void {
    this.tail.pause();
    this.backlogTimer ??= setInterval(() => {
      if (!this.held && this.tail.backlog() > this.backlogLimit) this.hold(true);
    }, 1000);
  }

  resume(): void {
    clearInterval(this.backlogTimer);
    this.backlogTimer = undefined;
    if (this.held) this.hold(false);
    this.tail.resume();
  }

  private hold(stop: boolean): void {
    const leader = this.readLeader();
    if (!leader || this.done) return;
    this.held = stop;
    if (stop) signalGroup(leader, 'SIGSTOP');
    else {
      // `script` stops itself when its child is stopped (it passes job control on): both go on.
      if (this.child.pid) signalGroup(this.child.pid, 'SIGCONT');
      signalGroup(leader, 'SIGCONT');
    }
  }
}
