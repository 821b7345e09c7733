import { describe, expect, it } from 'vitest';
import { RefusalLimiter } from '../../../app/github/refusal-limiter.js';

describe('RefusalLimiter', () => {
  it('answers a user once per pull request in ten minutes, and again after', () => {
    let now = 1_000_000;
    const limiter = new RefusalLimiter(10 * 60 * 1000, () => now);
    expect(limiter.allow(7, 3, 'mallory')).toBe(true);
    now += 10 * 60 * 1000 - 1;
    expect(limiter.allow(7, 3, 'Mallory')).toBe(false);
    now += 1;
    expect(limiter.allow(7, 3, 'mallory')).toBe(true);
    expect(limiter.allow(7, 3, 'mallory')).toBe(false);
  });

  it('counts each pull request, repository and user apart', () => {
    const limiter = new RefusalLimiter(10 * 60 * 1000, () => 0);
    expect([limiter.allow(7, 3, 'mallory'), limiter.allow(7, 4, 'mallory'), limiter.allow(8, 3, 'mallory'), limiter.allow(7, 3, 'eve')]).toEqual([true, true, true, true]);
    expect([limiter.allow(7, 3, 'mallory'), limiter.allow(7, 4, 'mallory'), limiter.allow(8, 3, 'mallory'), limiter.allow(7, 3, 'eve')]).toEqual([false, false, false, false]);
  });
});
