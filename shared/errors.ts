/**
 * Every error a user can see carries a stable code (listed in docs/errors.md) and says what to do.
 * The CLI prints `message` on one line and exits 1; it never prints a stack trace for these.
 */
export type ErrorCode =
  | 'DSTACK_ERR_YAML'
  | 'DSTACK_ERR_WORKFLOW_INVALID'
  | 'DSTACK_ERR_WORKFLOW_DUPLICATE'
  | 'DSTACK_ERR_WORKFLOW_UNKNOWN'
  | 'DSTACK_ERR_NO_WORKFLOWS'
  | 'DSTACK_ERR_VARIABLE_UNKNOWN'
  | 'DSTACK_ERR_DEPENDENCY_CYCLE'
  | 'DSTACK_ERR_PATH_ESCAPES'
  | 'DSTACK_ERR_PROVIDER_FETCH'
  | 'DSTACK_ERR_RUN_UNKNOWN'
  | 'DSTACK_ERR_RUN_ACTIVE'
  | 'DSTACK_ERR_TAG_UNKNOWN'
  | 'DSTACK_ERR_TAG_NOT_OURS'
  | 'DSTACK_ERR_RESOURCES'
  | 'DSTACK_ERR_PYTHON_MISSING'
  | 'DSTACK_ERR_ARTIFACT_EXISTS'
  | 'DSTACK_ERR_SECRET_UNKNOWN'
  | 'DSTACK_ERR_SECRETS_FILE'
  | 'DSTACK_ERR_ARCHIVE'
  | 'DSTACK_ERR_ARCHIVE_REFUSED'
  | 'DSTACK_ERR_SERVER'
  | 'DSTACK_ERR_AUTH'
  | 'DSTACK_ERR_AGENT_REFUSED'
  | 'DSTACK_ERR_CHECKOUT'
  | 'DSTACK_ERR_PATCH'
  | 'DSTACK_ERR_SOURCE'
  | 'DSTACK_ERR_TOKEN_UNKNOWN'
  | 'DSTACK_ERR_DOCKER'
  | 'DSTACK_ERR_CONFIG'
  | 'DSTACK_ERR_STORE_DAMAGED'
  | 'DSTACK_ERR_NO_SPACE'
  | 'DSTACK_ERR_LOG_INCOMPLETE'
  | 'DSTACK_ERR_USAGE';

export class DstackError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DstackError';
    this.code = code;
  }
}

export function isDstackError(err: unknown): err is DstackError {
  return err instanceof DstackError;
}
