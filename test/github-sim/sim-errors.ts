/**
 * An answer GitHub gives instead of the resource: thrown by handlers and turned into
 * `{message, documentation_url, status}` with this status code, as GitHub's API answers errors.
 */
export class GithubApiError extends Error {
  readonly code = 'GITHUB_SIM_API_ERROR';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'GithubApiError';
  }

  body(): Record<string, unknown> {
    return { message: this.message, documentation_url: 'https://docs.github.com/rest', status: String(this.status), ...this.extra };
  }
}

export const notFound = () => new GithubApiError(404, 'Not Found');

/** 422 with GitHub's `errors` list, as the API answers a request it understood but refuses. */
export function unprocessable(message: string, errors?: { resource: string; code: string; field?: string; message?: string }[]): GithubApiError {
  return new GithubApiError(422, message, {}, errors ? { errors } : {});
}

/**
 * A response of the sim that breaks GitHub's schema (a bug of the sim, or one a test made on
 * purpose): recorded, answered as 500, and thrown by `close()` unless a test takes it.
 */
export class SimSchemaError extends Error {
  readonly code = 'GITHUB_SIM_SCHEMA_ERROR';
  constructor(readonly problems: string[]) {
    super(`github-sim: ${problems.length} response(s) or webhook(s) broke GitHub's schema:\n${problems.join('\n')}`);
    this.name = 'SimSchemaError';
  }
}

/** A misuse of the admin API (unknown repository, bad folder): answered as 400/404 with this message. */
export class SimAdminError extends Error {
  readonly code = 'GITHUB_SIM_ADMIN_ERROR';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SimAdminError';
  }
}
