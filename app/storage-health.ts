import fs from 'node:fs';
import path from 'node:path';
import { DstackError } from '../shared/errors.js';

/** How long /healthz answers with its last probe's result. */
const RECHECK_MS = 1000;

/** What a probe writes: room for a log chunk (64 KiB) and its database rows, with some to spare. */
const PROBE_BYTES = 256 * 1024;

/** Whether an error says the disk (or the database on it) is full. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/**
 * Whether the server's data folder can take writes. A write that fails for lack of space marks it
 * full (`failed`); while it is, `check` writes a probe file to see whether there is room again
 * (the hub does every second, `/healthz` at most once a second) and, once there is, tells whoever waits
 * (`onRoom`: agents then send again what was not stored).
 */
export class StorageHealth {
  private full = false;
  private readonly listeners: (() => void)[] = [];

  constructor(readonly dataDir: string) {}

  get degraded(): boolean {
    return this.full;
  }

  /** Notes a failed write: true when it failed for lack of space (the caller then waits rather than fails). */
  failed(err: unknown): boolean {
    if (!isNoSpace(err)) return false;
    this.full = true;
    return true;
  }

  /** What the API answers (503) while the data folder is full. */
  error(): DstackError {
    return new DstackError('DSTACK_ERR_NO_SPACE', `no space left on the server's data folder ${this.dataDir}: nothing can be stored there until space is freed; try again then`);
  }

  /** The reason a job gets when its log could not be kept: the one place this text is made. */
  logNotKept(detail: string): string {
    return `no space left on the server's data folder ${this.dataDir}: the job's log could not be kept (${detail})`;
  }

  /**
   * check(), at most once a second: what /healthz answers. The endpoint takes no token, so each
   * request writing a probe would let anyone make the server write as fast as they can ask.
   */
  recentCheck(now = Date.now()): DstackError | Error | undefined {
    if (this.last && now - this.last.at < RECHECK_MS) return this.last.problem;
    const problem = this.check();
    this.last = { at: now, problem };
    return problem;
  }

  private last: { at: number; problem: DstackError | Error | undefined } | undefined;

  onRoom(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Writes a probe file: undefined when there is room (telling the listeners if there was none
   * before), else the error that says why not (no space, or another: a folder gone read-only).
   */
  check(): DstackError | Error | undefined {
    const probe = path.join(this.dataDir, '.space-probe');
    try {
      fs.writeFileSync(probe, Buffer.alloc(PROBE_BYTES));
      fs.rmSync(probe);
    } catch (err) {
      fs.rmSync(probe, { force: true });
      if (this.failed(err)) return this.error();
      return new Error(`the server's data folder ${this.dataDir} cannot be written: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (this.full) {
      this.full = false;
      for (const listener of this.listeners) listener();
    }
    return undefined;
  }
}
