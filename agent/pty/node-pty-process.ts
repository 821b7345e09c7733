import fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import type { PtyExit, PtyProcess, PtyProcessOptions } from '../pty-process.js';
import { killGroup, signalGroup } from './kill-group.js';
import { TERMINAL } from './terminal.js';

/** Loaded when first used: where `script` runs jobs, the native addon is never loaded. */
let nodePty: typeof NodePty | undefined;

/** A PtyProcess whose pty node-pty reads, on this process's event loop. */
export class NodePtyProcess implements PtyProcess {
  private readonly term: NodePty.IPty;
  readonly exited: Promise<PtyExit>;
  /** A pty not read fills up, and the command then waits. */
  readonly pauseIsFree = false;
  private done = false;

  constructor(options: PtyProcessOptions) {
    nodePty ??= createRequire(import.meta.url)('node-pty') as typeof NodePty;
    this.term = nodePty.spawn(options.file, options.args, {
      name: TERMINAL.name,
      cols: TERMINAL.cols,
      rows: TERMINAL.rows,
      cwd: options.cwd,
      env: options.env,
      encoding: null,
    });
    this.term.onData((d) => options.onData(d as unknown as Buffer));
    this.keepTailOnExit(options.onData);
    this.exited = new Promise((resolve) => {
      this.term.onExit(({ exitCode, signal }) => {
        this.done = true;
        // Nothing a job started outlives it: what it left running in the background (`server &`,
        // a daemon that kept its process group) is killed with the group.
        killGroup(this.term.pid);
        resolve({ exitCode, signal: signal || undefined });
      });
    });
  }

  /**
   * node-pty destroys the pty's socket 200 ms after the process exits if the socket has not closed
   * by then, and with it whatever output was still unread: on a busy event loop, the end of a job's
   * log. Before that destroy, read what is left straight from the (non-blocking) descriptor.
   */
  private keepTailOnExit(onData: (data: Buffer) => void): void {
    const internals = this.term as unknown as { _socket?: { destroy: (...args: unknown[]) => unknown; read: () => Buffer | string | null }; _fd?: number };
    const socket = internals._socket;
    const fd = internals._fd;
    if (!socket || typeof fd !== 'number') return;
    const destroy = socket.destroy.bind(socket);
    socket.destroy = (...args: unknown[]) => {
      // First what the socket had read but not yet handed on (it may be paused), then the rest.
      for (let chunk = socket.read(); chunk !== null; chunk = socket.read()) onData(Buffer.from(chunk));
      const buf = Buffer.alloc(65536);
      for (;;) {
        let n = 0;
        try {
          n = fs.readSync(fd, buf, 0, buf.length, null);
        } catch {
          break; // EAGAIN: nothing left; EIO: the other end is closed
        }
        if (n <= 0) break;
        onData(Buffer.from(buf.subarray(0, n)));
      }
      return destroy(...args);
    };
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.done) signalGroup(this.term.pid, sig);
  }

  pause(): void {
    this.term.pause();
  }

  resume(): void {
    this.term.resume();
  }
}
