/** The least time between two requests about one check run (GitHub: ~80 content-creating requests a minute per app). */
export const UPDATE_EVERY_MS = 5000;
/** The longest wait between two tries, whatever the backoff says. */
const MAX_BACKOFF_MS = 15 * 60_000;

/** Time, injectable so that tests run 30 minutes in a moment. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What a failed request said about when to try again, as Octokit's errors carry it. */
interface HttpError {
  status?: number;
  response?: { headers?: Record<string, string | number | undefined> };
}

/**
 * How long to wait before trying again after `err`, the `attempt`-th failure in a row (1, 2, …):
 * GitHub's own answer first (`retry-after`; `x-ratelimit-reset` once `x-ratelimit-remaining` is 0),
 * then a minute and more for a rate limit that says neither (a secondary limit, as GitHub asks),
 * else exponential from a second; with jitter (half to all of it), so that many check runs that
 * failed together do not come back together.
 */
export function backoffMs(err: unknown, attempt: number, now: number, random: () => number = Math.random): number {
  const e = err as HttpError;
  const headers = e?.response?.headers ?? {};
  const header = (name: string) => {
    const v = headers[name] ?? headers[name.toLowerCase()];
    return v === undefined ? undefined : String(v);
  };
  const retryAfter = header('retry-after');
  if (retryAfter !== undefined) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(ms)) return Math.min(MAX_BACKOFF_MS, Math.max(1000, ms));
  }
  if (header('x-ratelimit-remaining') === '0' && header('x-ratelimit-reset') !== undefined) {
    const ms = Number(header('x-ratelimit-reset')) * 1000 - now + 1000;
    if (Number.isFinite(ms)) return Math.min(MAX_BACKOFF_MS, Math.max(1000, ms));
  }
  const jitter = 0.5 + random() / 2;
  if (e?.status === 403 || e?.status === 429) return Math.min(MAX_BACKOFF_MS, 60_000 * 2 ** (attempt - 1) * jitter);
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1) * jitter);
}

interface Entry {
  /** When the last request about it started (-Infinity: never). */
  lastSent: number;
  dirty: boolean;
  /** The next request must be the final one (the job ended). */
  final: boolean;
  timer?: unknown;
  inFlight: boolean;
  failures: number;
  notBefore: number;
}

export interface UpdateSchedulerOptions {
  intervalMs?: number;
  clock?: Clock;
  random?: () => number;
  /** Keys that share a rate limit (one installation): a limit hit by one holds them all back. */
  groupOf?: (key: string) => string;
  log?: (line: string) => void;
}

/**
 * Coalesces changes into requests, per key (a job's check run): at most one request every
 * `intervalMs`, carrying everything that changed since the last one (`send` reads the state when it
 * runs); one at a time per key; after a failure, the next try waits as `backoffMs` says, and the
 * whole group waits when GitHub named a time. The final request (after `finish`) is retried until it
 * lands; an intermediate one that fails is made good by the next.
 */
export class UpdateScheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly groupNotBefore = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private closed = false;
  private inFlight = 0;

  constructor(
    private readonly send: (key: string, final: boolean) => Promise<void>,
    private readonly options: UpdateSchedulerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? UPDATE_EVERY_MS;
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.random = options.random ?? Math.random;
  }

  /** Something of `key` changed: a request follows, no sooner than the interval allows. */
  touch(key: string): void {
    const e = this.entry(key);
    e.dirty = true;
    this.schedule(key, e);
  }

  /** `key` ended: its final request follows (as soon as the interval allows), retried until it lands. */
  finish(key: string): void {
    const e = this.entry(key);
    e.dirty = true;
    e.final = true;
    this.schedule(key, e);
  }

  /** Whether nothing waits or is in flight. */
  get idle(): boolean {
    return this.inFlight === 0 && [...this.entries.values()].every((e) => !e.dirty);
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    this.entries.clear();
  }

  private entry(key: string): Entry {
    let e = this.entries.get(key);
    if (!e) {
      e = { lastSent: -Infinity, dirty: false, final: false, inFlight: false, failures: 0, notBefore: 0 };
      this.entries.set(key, e);
    }
    return e;
  }

  private schedule(key: string, e: Entry): void {
    // A timer is set: a request's, or a finished entry's clean-up, which schedules what changed meanwhile.
    if (this.closed || e.inFlight || e.timer !== undefined || !e.dirty) return;
    const group = this.options.groupOf?.(key);
    const at = Math.max(e.lastSent + this.intervalMs, e.notBefore, group === undefined ? 0 : (this.groupNotBefore.get(group) ?? 0));
    e.timer = this.clock.setTimeout(() => {
      e.timer = undefined;
      void this.fire(key, e);
    }, Math.max(0, at - this.clock.now()));
  }

  private async fire(key: string, e: Entry): Promise<void> {
    if (this.closed || !e.dirty) return;
    const group = this.options.groupOf?.(key);
    // The group may have been held back since this timer was set.
    const held = group === undefined ? 0 : (this.groupNotBefore.get(group) ?? 0);
    if (held > this.clock.now()) return this.schedule(key, e);
    const final = e.final;
    e.dirty = false;
    e.inFlight = true;
    e.lastSent = this.clock.now();
    this.inFlight++;
    try {
      await this.send(key, final);
      e.failures = 0;
      e.notBefore = 0;
      if (final && !e.dirty) {
        // Done with it, once the interval is over: a later change (another job of the run ended) still waits for it.
        e.final = false;
        e.timer = this.clock.setTimeout(() => {
          e.timer = undefined;
          if (!e.dirty && !e.inFlight) this.entries.delete(key);
          else this.schedule(key, e);
        }, this.intervalMs);
        return;
      }
    } catch (err) {
      e.failures++;
      e.dirty = true;
      const wait = backoffMs(err, e.failures, this.clock.now(), this.random);
      e.notBefore = this.clock.now() + wait;
      const headers = (err as HttpError)?.response?.headers ?? {};
      if (group !== undefined && (headers['retry-after'] !== undefined || headers['x-ratelimit-remaining'] === '0')) this.groupNotBefore.set(group, e.notBefore);
      this.options.log?.(`${key}: ${final ? 'final ' : ''}update failed (${describe(err)}); trying again in ${Math.round(wait / 1000)} s`);
    } finally {
      e.inFlight = false;
      this.inFlight--;
    }
    this.schedule(key, e);
  }
}

function describe(err: unknown): string {
  const status = (err as HttpError)?.status;
  const message = err instanceof Error ? err.message : String(err);
  return status ? `${status}: ${message.split('\n')[0]}` : message;
}
