import fs from 'node:fs';
import * as pty from 'node-pty';

export interface PtyProcessOptions {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  onData: (data: Buffer) => void;
}

/**
 * A command under a pseudo-terminal, so progress bars render as they would for the user. It leads
 * its own session, so signals go to its whole process group and never to the CLI's.
 */
export class PtyProcess {
  private readonly term: pty.IPty;
  readonly exited: Promise<{ exitCode: number; signal?: number }>;
  private done = false;

  constructor(options: PtyProcessOptions) {
    this.term = pty.spawn(options.file, options.args, {
      name: 'xterm-256color',
      cols: 120,
      rows: 40,
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

  get pid(): number {
    return this.term.pid;
  }

  /** Sends a signal to the whole process group (the shell and everything it started). */
  signal(sig: NodeJS.Signals): void {
    if (this.done) return;
    try {
      process.kill(-this.term.pid, sig);
    } catch {
      try {
        process.kill(this.term.pid, sig);
      } catch {
        // Already gone.
      }
    }
  }

  pause(): void {
    this.term.pause();
  }

  resume(): void {
    this.term.resume();
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // No process is left in the group.
  }
}
