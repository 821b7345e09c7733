import type { RunRow } from '../store/store.js';

/** Mints the credential for one run's code: a short-lived token, or undefined when the run needs none. */
export type CredentialSource = (run: RunRow) => Promise<string | undefined>;

/**
 * Where an agent's `GET /api/jobs/:id/git-credentials` gets a token to fetch a run's code with.
 * The server knows no source of its own; a front door that starts runs on private code (the GitHub
 * App: an installation token for that one repository) provides one. Tokens are minted on demand
 * and handed out, never stored.
 */
export class GitCredentials {
  private source: CredentialSource | undefined;

  provide(source: CredentialSource): void {
    this.source = source;
  }

  async forRun(run: RunRow): Promise<string | undefined> {
    return this.source?.(run);
  }
}
