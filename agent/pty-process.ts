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
    this.exited = new Promise((resolve) => {
      this.term.onExit(({ exitCode, signal }) => {
        this.done = true;
        resolve({ exitCode, signal: signal || undefined });
      });
    });
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
