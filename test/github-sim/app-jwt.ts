import crypto from 'node:crypto';
import { GithubApiError } from './sim-errors.js';

// GitHub's own messages: @octokit/auth-app recognises the two about iat and exp as clock skew and
// retries with the server's time, so they must be word for word.
export const JWT_UNDECODABLE = 'A JSON web token could not be decoded';
export const JWT_EXPIRED = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
export const JWT_IAT_FUTURE = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
export const JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future";
export const JWT_WRONG_ISSUER = "'Issuer' claim ('iss') must be an Integer";

/** The skew GitHub tolerates on `iat`; a JWT may live at most 10 minutes. */
const IAT_SKEW_S = 60;
const MAX_LIFETIME_S = 600;

const b64json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

/**
 * Checks a GitHub App JWT as GitHub does: RS256 signed with the app's private key (verified with
 * its public key), `iss` the app id, `iat` not in the future beyond the skew, `exp` in the future
 * and at most 10 minutes after `iat`. Throws 401 with GitHub's message otherwise.
 */
export function verifyAppJwt(jwt: string, publicKey: crypto.KeyObject, appId: number, clientId: string, nowMs = Date.now()): void {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new GithubApiError(401, JWT_UNDECODABLE);
  let header: any;
  let claims: any;
  try {
    header = b64json(parts[0]!);
    claims = b64json(parts[1]!);
  } catch {
    throw new GithubApiError(401, JWT_UNDECODABLE);
  }
  if (header?.alg !== 'RS256') throw new GithubApiError(401, JWT_UNDECODABLE);
  const signed = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2]!, 'base64url'));
  if (!signed) throw new GithubApiError(401, JWT_UNDECODABLE);
  // GitHub takes the app id as a number or a string, or the app's client id.
  if (String(claims.iss) !== String(appId) && claims.iss !== clientId) throw new GithubApiError(401, JWT_WRONG_ISSUER);
  const now = Math.floor(nowMs / 1000);
  if (!Number.isInteger(claims.iat) || claims.iat > now + IAT_SKEW_S) throw new GithubApiError(401, JWT_IAT_FUTURE);
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw new GithubApiError(401, JWT_EXPIRED);
  if (claims.exp - claims.iat > MAX_LIFETIME_S) throw new GithubApiError(401, JWT_TOO_LONG);
}
