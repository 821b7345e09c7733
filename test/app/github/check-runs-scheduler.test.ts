import { describe, expect, it } from 'vitest';
import { backoffMs, UpdateScheduler, type Clock } from '../../../app/github/check-runs-scheduler.js';

/** A clock whose time moves only when the test says; timers fire in order as it passes them. */
class FakeClock implements Clock {
  time = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 1;
  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.timers.push({ at: this.time + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.timers = this.timers.filter((t) => t.id !== id);
  };
  /** Moves time forward by `ms`, running each timer due (and letting the promises it starts settle). */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await flush();
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.timers[0];
      if (!t || t.at > end) break;
      this.timers.shift();
      this.time = Math.max(this.time, t.at);
      t.fn();
    }
    this.time = end;
    await flush();
  }
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function httpError(status: number, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status, response: { headers } });
}

describe('check run update scheduler', () => {
  it('makes at most 400 requests for a job that prints continuously for 30 minutes, at least 5 s apart', async () => {
    const clock = new FakeClock();
    const sent: { at: number; final: boolean }[] = [];
    const s = new UpdateScheduler(async (_key, final) => void sent.push({ at: clock.now(), final }), { clock });
    s.touch('job-1');
    // A log chunk every 100 ms for 30 minutes.
    for (let t = 0; t < 30 * 60_000; t += 100) {
      s.touch('job-1');
      await clock.advance(100);
    }
    s.finish('job-1');
    await clock.advance(10_000);
    expect(sent.length).toBeLessThanOrEqual(400);
    expect(sent.length).toBeGreaterThan(300);
    expect(sent.at(-1)!.final).toBe(true);
    expect(sent.filter((r) => r.final)).toHaveLength(1);
    for (let i = 1; i < sent.length; i++) expect(sent[i]!.at - sent[i - 1]!.at).toBeGreaterThanOrEqual(5000);
  });

  it('coalesces every change of an interval into one request, and keeps check runs apart', async () => {
    const clock = new FakeClock();
    const sent: string[] = [];
    const s = new UpdateScheduler(async (key) => void sent.push(`${key}@${clock.now()}`), { clock });
    s.touch('a');
    s.touch('b');
    await clock.advance(1);
    for (let i = 0; i < 50; i++) s.touch('a');
    await clock.advance(4998);
    expect(sent).toEqual(['a@0', 'b@0']);
    await clock.advance(1);
    expect(sent).toEqual(['a@0', 'b@0', 'a@5000']);
  });

  it('waits as long as retry-after says, for every check run of the installation', async () => {
    const clock = new FakeClock();
    const sent: string[] = [];
    let fail = true;
    const s = new UpdateScheduler(
      async (key) => {
        if (key === 'a' && fail) {
          fail = false;
          throw httpError(429, { 'retry-after': '30' });
        }
        sent.push(`${key}@${clock.now()}`);
      },
      { clock, groupOf: () => 'installation-1' },
    );
    s.touch('a');
    await clock.advance(1000);
    s.touch('b');
    await clock.advance(28_000);
    expect(sent).toEqual([]);
    await clock.advance(1001);
    expect(sent.sort()).toEqual(['a@30000', 'b@30000']);
  });

  it('retries the final update until it lands, backing off exponentially with jitter', async () => {
    const clock = new FakeClock();
    const tries: number[] = [];
    const s = new UpdateScheduler(
      async () => {
        tries.push(clock.now());
        if (tries.length <= 6) throw httpError(502);
      },
      { clock, random: () => 1 },
    );
    s.finish('a');
    await clock.advance(120_000);
    expect(tries).toEqual([0, 5000, 10_000, 15_000, 23_000, 39_000, 71_000]);
    expect(s.idle).toBe(true);
  });

  it('sends a final update once more when the run ends after the job did', async () => {
    const clock = new FakeClock();
    const sent: [number, boolean][] = [];
    const s = new UpdateScheduler(async (_k, final) => void sent.push([clock.now(), final]), { clock });
    s.finish('a');
    await clock.advance(1000);
    s.finish('a');
    await clock.advance(10_000);
    expect(sent).toEqual([
      [0, true],
      [5000, true],
    ]);
  });

  it('reads GitHub\'s headers for the wait: retry-after, the primary limit\'s reset, a minute for a secondary limit without them', () => {
    expect(backoffMs(httpError(403, { 'retry-after': '7' }), 1, 0)).toBe(7000);
    expect(backoffMs(httpError(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '100' }), 1, 40_000)).toBe(61_000);
    expect(backoffMs(httpError(403), 1, 0, () => 1)).toBe(60_000);
    expect(backoffMs(httpError(403), 2, 0, () => 0)).toBe(60_000);
    expect(backoffMs(httpError(500), 3, 0, () => 1)).toBe(4000);
    expect(backoffMs(new Error('ECONNRESET'), 1, 0, () => 0)).toBe(500);
  });
});
