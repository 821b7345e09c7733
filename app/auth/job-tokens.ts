import crypto from 'node:crypto';
import { subKey } from './server-key.js';

/** How long a job token is good for; the hub hands a running job a fresh one well before. */
export const JOB_TOKEN_TTL_MS = 2 * 60 * 60 * 1000;

/**
 * Short-lived tokens scoped to one job on one agent, for its HTTP requests (code, archives,
 * uploads): the job id, the agent and an expiry, signed with a key derived from the server's.
 * Nothing is stored, so checking one costs an HMAC, and a restarted server still takes the tokens
 * its agents hold. A token is also refused once its job has ended or is no longer on that agent
 * (the routes check the job's row): an agent written off as lost, or whose offer was withdrawn,
 * can no longer read or write the job.
 */
export class JobTokens {
  private readonly key: Buffer;

  constructor(serverKey: Buffer, private readonly now: () => number = Date.now) {
    this.key = subKey(serverKey, 'dstack job token');
  }

  issue(jobId: string, agent: string, ttlMs = JOB_TOKEN_TTL_MS): string {
    const body = Buffer.from(JSON.stringify({ job: jobId, agent, exp: this.now() + ttlMs })).toString('base64url');
    return `dsj_${body}.${this.sign(body)}`;
  }

  /** The job and agent a token is for, or undefined when it is forged, damaged or expired. */
  verify(token: string | undefined): { job: string; agent: string } | undefined {
    const match = /^dsj_([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token ?? '');
    if (!match) return undefined;
    const expected = Buffer.from(this.sign(match[1]!));
    const given = Buffer.from(match[2]!);
    if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) return undefined;
    const claims = JSON.parse(Buffer.from(match[1]!, 'base64url').toString()) as { job: string; agent: string; exp: number };
    return claims.exp > this.now() ? { job: claims.job, agent: claims.agent } : undefined;
  }

  private sign(body: string): string {
    return crypto.createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
