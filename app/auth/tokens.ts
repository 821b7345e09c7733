import crypto from 'node:crypto';
import { DstackError } from '../../shared/errors.js';
import type { Store, TokenRow } from '../store/store.js';
import { isNoSpace } from '../storage-health.js';

export type TokenKind = 'agent' | 'user';

/** Who a request is, once its token checks out. */
export interface Principal {
  tokenId: string;
  owner: string;
  kind: TokenKind;
}

/** A GitHub user or organisation name: letters, digits and single hyphens, at most 39. */
export const OWNER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;

/**
 * The server's tokens. A token is 32 random bytes: a SHA-256 of it is all the store keeps, which is
 * enough for secrets of that entropy (nothing to brute-force, so no slow hash is needed), and lets
 * a request's token be found by one indexed lookup.
 */
export class Tokens {
  constructor(private readonly store: Store) {}

  create(owner: string, kind: TokenKind): { id: string; token: string } {
    if (!OWNER_NAME.test(owner)) {
      throw new DstackError('DSTACK_ERR_USAGE', `invalid owner '${owner}': a GitHub user or organisation name (letters, digits and single hyphens, at most 39)`);
    }
    const token = `dstack_${crypto.randomBytes(32).toString('base64url')}`;
    const id = `tok_${crypto.randomBytes(4).toString('hex')}`;
    this.store.insertToken({ id, owner, kind, hash: hash(token), created_at: Date.now() });
    return { id, token };
  }

  /** The principal a token stands for, or undefined when it is unknown or revoked. */
  verify(token: string | undefined): Principal | undefined {
    if (!token) return undefined;
    const row = this.store.tokenByHash(hash(token));
    if (!row || row.revoked_at !== null) return undefined;
    // Last use to the minute: a write per request would make every API call a database write.
    const now = Date.now();
    if (row.last_used_at === null || now - row.last_used_at >= 60_000) {
      try {
        this.store.touchToken(row.id, now);
      } catch (err) {
        // A full data folder: the last use is a hint, and must not refuse the request (reads still work).
        if (!isNoSpace(err)) throw err;
      }
    }
    return { tokenId: row.id, owner: row.owner, kind: row.kind };
  }

  /** Whether a token was revoked since it was verified (or does not exist). */
  revoked(tokenId: string): boolean {
    const row = this.store.tokenById(tokenId);
    return !row || row.revoked_at !== null;
  }

  list(): Omit<TokenRow, 'hash'>[] {
    return this.store.listTokens().map(({ hash: _hash, ...rest }) => rest);
  }

  revoke(id: string): void {
    if (!this.store.revokeToken(id, Date.now())) {
      throw new DstackError('DSTACK_ERR_TOKEN_UNKNOWN', `no token '${id}' (or it is revoked already); 'dstack-app token list' lists them`);
    }
  }
}

function hash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}
