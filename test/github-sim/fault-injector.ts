import { GithubApiError } from './sim-errors.js';

export type FaultKind = 'rate-limit-429' | 'rate-limit-403' | 'secondary-403' | 'server-500' | 'bad-gateway-502' | 'unavailable-503';
export const FAULT_KINDS: FaultKind[] = ['rate-limit-429', 'rate-limit-403', 'secondary-403', 'server-500', 'bad-gateway-502', 'unavailable-503'];

export interface FaultRule {
  /** Share of matching requests that fail, 0..1, drawn from a PRNG seeded with `seed`. */
  rate: number;
  kinds: FaultKind[];
  seed?: number;
  /** Only these operation ids (e.g. `checks/update`); every REST route when absent. */
  operations?: string[];
  /** Seconds sent in `retry-after` (429 and secondary 403) and used for `x-ratelimit-reset`. */
  retryAfter?: number;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Makes REST requests fail as GitHub's do under load, before the handler runs (so a failed
 * request changed nothing): a seeded share of requests (the same requests fail on every run with
 * the same seed and order), and queued one-off failures for exact tests.
 */
export class FaultInjector {
  private rule: FaultRule | null = null;
  private random: () => number = prng(1);
  private queued: { kind: FaultKind; operations?: string[]; retryAfter?: number }[] = [];
  readonly injected: { operationId: string; kind: FaultKind }[] = [];

  set(rule: FaultRule | null): void {
    if (rule) {
      if (!(rule.rate >= 0 && rule.rate <= 1)) throw new RangeError('fault rate must be between 0 and 1');
      for (const k of rule.kinds) if (!FAULT_KINDS.includes(k)) throw new RangeError(`unknown fault kind ${k}: one of ${FAULT_KINDS.join(', ')}`);
      if (rule.kinds.length === 0) throw new RangeError('fault kinds must not be empty');
    }
    this.rule = rule;
    this.random = prng(rule?.seed ?? 1);
  }

  /** The next `times` matching requests fail with `kind`. */
  failNext(kind: FaultKind, times = 1, operations?: string[], retryAfter?: number): void {
    if (!FAULT_KINDS.includes(kind)) throw new RangeError(`unknown fault kind ${kind}: one of ${FAULT_KINDS.join(', ')}`);
    for (let i = 0; i < times; i++) this.queued.push({ kind, operations, retryAfter });
  }

  clear(): void {
    this.set(null);
    this.queued = [];
  }

  /** The error this request gets, or null: called once per REST request. */
  draw(operationId: string, installationId: number | null): GithubApiError | null {
    const q = this.queued.findIndex((f) => !f.operations || f.operations.includes(operationId));
    if (q >= 0) {
      const f = this.queued.splice(q, 1)[0]!;
      return this.error(operationId, f.kind, f.retryAfter ?? 1, installationId);
    }
    const rule = this.rule;
    if (!rule || (rule.operations && !rule.operations.includes(operationId))) return null;
    if (this.random() >= rule.rate) return null;
    const kind = rule.kinds[Math.floor(this.random() * rule.kinds.length)]!;
    return this.error(operationId, kind, rule.retryAfter ?? 1, installationId);
  }

  private error(operationId: string, kind: FaultKind, retryAfter: number, installationId: number | null): GithubApiError {
    this.injected.push({ operationId, kind });
    const reset = String(Math.ceil(Date.now() / 1000) + retryAfter);
    const requestId = `SIM:${this.injected.length}`;
    const limited = { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-used': '5000', 'x-ratelimit-reset': reset, 'x-ratelimit-resource': 'core' };
    const primary = `API rate limit exceeded for installation ID ${installationId ?? 0}. If you reach out to GitHub Support for help, please include the request ID ${requestId} and timestamp ${new Date().toISOString()}.`;
    switch (kind) {
      case 'rate-limit-429':
        return new GithubApiError(429, primary, { ...limited, 'retry-after': String(retryAfter) }, { documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api' });
      case 'rate-limit-403':
        return new GithubApiError(403, primary, limited, { documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api' });
      case 'secondary-403':
        // Octokit's throttling plugin knows a secondary limit by "secondary rate" in the message.
        return new GithubApiError(
          403,
          `You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ${requestId}.`,
          { 'retry-after': String(retryAfter) },
          { documentation_url: 'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits' },
        );
      case 'server-500':
        return new GithubApiError(500, 'Server Error');
      case 'bad-gateway-502':
        return new GithubApiError(502, 'Server Error');
      case 'unavailable-503':
        return new GithubApiError(503, 'Service Unavailable');
    }
  }
}
