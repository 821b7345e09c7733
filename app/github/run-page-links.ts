import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { subKey } from '../auth/server-key.js';

/**
 * Links to the server's run page, `/runs/RUN?key=KEY`: the key is an HMAC of the run name with a
 * key derived from the server's, so a link opens that one run and nothing else, costs nothing to
 * check, and survives a restart. Without a valid key the page is as missing as an unknown run.
 */
export class RunPageLinks {
  private readonly key: Buffer;

  /**
   * `publicUrl`: DSTACK_SERVER_URL; without it, the address the server listens on (read when a link
   * is made, since it is known only once the server listens; an unspecified address, 0.0.0.0 or ::,
   * becomes localhost: set DSTACK_SERVER_URL for links others can open).
   */
  constructor(
    serverKey: Buffer,
    private readonly publicUrl: string | undefined,
    private readonly address: () => AddressInfo | string | null | undefined,
  ) {
    this.key = subKey(serverKey, 'dstack run page');
  }

  /** The key of a run's links. */
  keyOf(runName: string): string {
    return crypto.createHmac('sha256', this.key).update(runName).digest('base64url').slice(0, 32);
  }

  verify(runName: string, key: unknown): boolean {
    if (typeof key !== 'string') return false;
    const expected = Buffer.from(this.keyOf(runName));
    const given = Buffer.from(key);
    return expected.length === given.length && crypto.timingSafeEqual(expected, given);
  }

  /** The server's base URL, without a trailing slash; undefined before it listens (and without DSTACK_SERVER_URL). */
  base(): string | undefined {
    if (this.publicUrl) return this.publicUrl.replace(/\/+$/, '');
    const a = this.address();
    if (!a || typeof a === 'string') return undefined;
    const host = a.address === '0.0.0.0' || a.address === '::' ? 'localhost' : a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  runUrl(runName: string): string | undefined {
    const base = this.base();
    return base && `${base}/runs/${encodeURIComponent(runName)}?key=${this.keyOf(runName)}`;
  }

  /** The download of one artifact (a tar of the job's artifact path). */
  artifactUrl(runName: string, jobId: string, artifactPath: string): string | undefined {
    const base = this.base();
    return base && `${base}/runs/${encodeURIComponent(runName)}/jobs/${encodeURIComponent(jobId)}/artifact?path=${encodeURIComponent(artifactPath)}&key=${this.keyOf(runName)}`;
  }
}

/** The links of each server's run page, by its state (what the server and the GitHub App share), set where the page is mounted. */
const LINKS = new WeakMap<object, RunPageLinks>();

export function setRunPageLinks(state: object, links: RunPageLinks): void {
  LINKS.set(state, links);
}

export function runPageLinksOf(state: object): RunPageLinks | undefined {
  return LINKS.get(state);
}

/** The GitHub App's links to the run page (its comments, check runs' `details_url`): the one line in the app's factory. */
export function attachRunPageLinks(app: { server: { state: object }; setRunPageUrl(fn: (runName: string) => string | undefined): void }): void {
  app.setRunPageUrl((runName) => runPageLinksOf(app.server.state)?.runUrl(runName));
}
