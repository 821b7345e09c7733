import fs from 'node:fs';
import { z } from 'zod';
import { DstackError } from '../../shared/errors.js';
import { readEnv } from '../../shared/config/read-env.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

// Probot's own variables (https://probot.github.io/docs/configuration/), so a Probot user finds them where they expect.
const schema = z.object({
  APP_ID: z.string().regex(/^\d+$/, { error: 'must be the GitHub App\'s numeric id' }).optional(),
  PRIVATE_KEY: z.string().optional(),
  PRIVATE_KEY_PATH: z.string().optional(),
  WEBHOOK_SECRET: z.string().optional(),
  GHE_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, { error: 'must be a host name with an optional port (github.example.com), without https://' })
    .optional(),
  GHE_PROTOCOL: z.enum(['http', 'https'], { error: 'must be http or https' }).default('https'),
  WEBHOOK_PROXY_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

export interface GithubSettings {
  appId: number;
  /** The app's private key, PEM. */
  privateKey: string;
  webhookSecret: string;
  /** The REST API: https://api.github.com, or `GHE_PROTOCOL://GHE_HOST/api/v3`. */
  apiUrl: string;
  webhookProxyUrl?: string;
  logLevel: (typeof LOG_LEVELS)[number];
}

/**
 * The GitHub App's settings, or undefined when none of its variables is set (the server then runs
 * for the CLI only). Once one is set, the others it needs must be: each mistake is one
 * DSTACK_ERR_CONFIG line naming the variable.
 */
export function githubSettings(env: NodeJS.ProcessEnv = process.env): GithubSettings | undefined {
  const v = readEnv(schema, env);
  if (v.APP_ID === undefined && v.PRIVATE_KEY === undefined && v.PRIVATE_KEY_PATH === undefined && v.WEBHOOK_SECRET === undefined) return undefined;
  const missing = (name: string, what: string) =>
    new DstackError('DSTACK_ERR_CONFIG', `${name} is not set: the GitHub App needs ${what} (or unset APP_ID, PRIVATE_KEY, PRIVATE_KEY_PATH and WEBHOOK_SECRET to serve the CLI only)`);
  if (v.APP_ID === undefined) throw missing('APP_ID', "the App ID from the app's settings page");
  if (v.PRIVATE_KEY === undefined && v.PRIVATE_KEY_PATH === undefined) throw missing('PRIVATE_KEY or PRIVATE_KEY_PATH', 'the private key (.pem) generated for the app');
  if (v.PRIVATE_KEY !== undefined && v.PRIVATE_KEY_PATH !== undefined) {
    throw new DstackError('DSTACK_ERR_CONFIG', 'PRIVATE_KEY and PRIVATE_KEY_PATH are both set; keep one');
  }
  if (v.WEBHOOK_SECRET === undefined) throw missing('WEBHOOK_SECRET', 'the webhook secret entered when registering the app');
  const privateKey = v.PRIVATE_KEY !== undefined ? keyFromValue(v.PRIVATE_KEY) : keyFromFile(v.PRIVATE_KEY_PATH!);
  return {
    appId: Number(v.APP_ID),
    privateKey,
    webhookSecret: v.WEBHOOK_SECRET,
    apiUrl: v.GHE_HOST ? `${v.GHE_PROTOCOL}://${v.GHE_HOST}/api/v3` : 'https://api.github.com',
    ...(v.WEBHOOK_PROXY_URL ? { webhookProxyUrl: v.WEBHOOK_PROXY_URL } : {}),
    logLevel: v.LOG_LEVEL,
  };
}

const PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----/;

/** PEM text, with its newlines as `\n` (one-line variables), or base64 of it — as Probot accepts it. */
function keyFromValue(value: string): string {
  const text = value.includes('-----BEGIN') ? value.replace(/\\n/g, '\n') : Buffer.from(value, 'base64').toString('utf8');
  if (!PEM.test(text)) throw new DstackError('DSTACK_ERR_CONFIG', 'PRIVATE_KEY must be a PEM private key (-----BEGIN RSA PRIVATE KEY-----…), or that key base64-encoded');
  return text;
}

function keyFromFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DstackError('DSTACK_ERR_CONFIG', `PRIVATE_KEY_PATH cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} '${file}'`, { cause: err });
  }
  if (!PEM.test(text)) throw new DstackError('DSTACK_ERR_CONFIG', `PRIVATE_KEY_PATH '${file}' is not a PEM private key (-----BEGIN RSA PRIVATE KEY-----…)`);
  return text;
}
