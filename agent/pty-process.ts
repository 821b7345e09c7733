import { NodePtyProcess } from './pty/node-pty-process.js';
import { ScriptPtyProcess, utilLinuxScript } from './pty/script-process.js';

/** An unprivileged user a command runs as, switched to by the (root) agent (`dstack-agent --run-as`). */
export interface RunAs {
  user: string;
  uid: number;
  gid: number;
}

export interface PtyProcessOptions {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The command's output, in order; the bytes may be lent for the call only (copy what you keep). */
  onData: (data: Buffer) => void;
  /** A folder for the pty's copy of the output, under `script` (default: the system's temporary folder). */
  stateDir?: string;
  /** Under `script`: how much output may wait unread while paused before the command is stopped (default 512 MiB). */
  backlogLimitBytes?: number;
  /**
   * Run the command as this user (under `script` only; the caller must be root). `stateDir` must
   * then be a folder that user cannot write: the pty's copy of the output and the command's pid are
   * kept there, and read back by this (root) process.
   */
  runAs?: RunAs;
}

/** How the command ended: its exit code, or the signal that killed it. */
export interface PtyExit {
  exitCode: number;
  signal?: number;
}

/**
 * A command under a pseudo-terminal, so progress bars render as they would for the user. It leads
 * its own session, so signals go to its whole process group and never to the caller's; what it
 * leaves running in the background is killed when it exits. Its output reaches `onData` in order,
 * all of it before `exited` settles.
 */
export interface PtyProcess {
  readonly exited: Promise<PtyExit>;
  /** Sends a signal to the whole process group (the shell and everything it started). */
  signal(sig: NodeJS.Signals): void;
  /** Holds `onData` back (the reader is behind); `resume` lets it go on. */
  pause(): void;
  resume(): void;
  /** Whether a pause holds up only `onData`, never the command (its output waits in a file meanwhile). */
  readonly pauseIsFree: boolean;
}

export type PtyBackend = 'script' | 'node-pty';

/**
 * util-linux `script` where there is one (every common Linux): it copies the pty into a file in C,
 * so the job never waits on this process's event loop, and this side reads the file in large
 * pieces. node-pty elsewhere: it reads the pty here, 4 KiB at a time, and a busy event loop holds
 * the job up.
 */
export function ptyBackend(): PtyBackend {
  return utilLinuxScript() ? 'script' : 'node-pty';
}

export function spawnPty(options: PtyProcessOptions, backend: PtyBackend = ptyBackend()): PtyProcess {
  // The agent refuses --run-as without `script` and `setpriv` at its start (switchUserProblem).
  if (options.runAs && backend !== 'script') throw new Error(`cannot run a job as ${options.runAs.user} without util-linux script and setpriv`);
  return backend === 'script' ? new ScriptPtyProcess(options) : new NodePtyProcess(options);
}
