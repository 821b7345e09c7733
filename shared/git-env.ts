/** Variables git needs from ours: where things are, locale, ssh, proxies; nothing that runs an editor or pager. */
const PASSED = /^(PATH|HOME|USER|LOGNAME|LANG|LC_[A-Z]+|TMPDIR|TZ|SSH_AUTH_SOCK|GIT_SSH|GIT_SSH_COMMAND|GIT_ASKPASS|SSL_CERT_FILE|SSL_CERT_DIR|GIT_SSL_CAINFO|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy|XDG_CONFIG_HOME)$/;

/**
 * The environment for a git command run on a user's behalf: the useful parts of ours, no prompt for
 * credentials (a job must not hang on one), and `extra` on top.
 */
export function gitEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = { GIT_TERMINAL_PROMPT: '0' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && PASSED.test(k)) out[k] = v;
  return Object.assign(out, extra);
}
