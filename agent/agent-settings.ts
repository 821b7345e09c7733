import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DstackError } from '../shared/errors.js';
import type { Isolation } from './job-runner.js';
import type { RunAs } from './pty-process.js';

/** The image for bash and python jobs under `docker` isolation: the same default as local mode's (cli/local/config-file.ts). */
export const AGENT_DEFAULT_IMAGE = 'python:3.11-slim';

/** The options as commander parsed them (all strings, all optional: a variable may give them). */
export interface AgentOptions {
  url?: string;
  token?: string;
  name?: string;
  labels?: string;
  workDir?: string;
  isolation?: string;
  image?: string;
  tokenFile?: string;
  runAs?: string;
  allowUntrustedOnHost?: boolean;
}

/** The name of the token's systemd credential (`LoadCredential=dstack-agent-token:/etc/dstack-agent/token`). */
export const TOKEN_CREDENTIAL = 'dstack-agent-token';



export interface AgentSettings {
  /** The server's base URL, `http://…` or `https://…`. */
  url: string;
  /** An agent token (`dstack-app token create --agent`). */
  token: string;
  /** The agent's name among its owner's agents (default: the host name). */
  name: string;
  labels: string[];
  /** Mirrors, job folders and log spools live here. */
  workDir: string;
  isolation: Isolation;
  /** Host jobs run as this user, not the agent's (which must be root to switch). */
  runAs?: RunAs;
  /** Host isolation takes a fork's pull request too (the owner trusts every fork's code). */
  allowUntrustedOnHost: boolean;
}

// Labels as a workflow's `resources.labels` may ask for them (shared/workflow/schema.ts), so any label
// an agent has can be asked for.
const LABEL = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const fields = {
  url: z
    .string()
    .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), { error: 'must be an http:// or https:// URL' }),
  token: z.string().regex(/^\S+$/, { error: 'must be a token without spaces' }),
  name: z
    .string()
    .max(100, { error: 'must be at most 100 characters' })
    .regex(LABEL, { error: 'must be letters, digits, `_`, `.` and `-`, starting with a letter or digit' }),
  labels: z
    .string()
    .transform((v) => v.split(',').map((l) => l.trim()).filter(Boolean))
    .refine((ls) => ls.every((l) => LABEL.test(l) && l.length <= 100), { error: 'must be labels separated by commas, each letters, digits, `_`, `.` and `-`' })
    .refine((ls) => ls.length <= 50, { error: 'must be at most 50 labels' }),
  workDir: z.string(),
  isolation: z.enum(['host', 'docker'], { error: 'must be host or docker' }),
  image: z.string().regex(/^\S+$/, { error: 'must be an image name' }),
  tokenFile: z.string().min(1, { error: 'must be a file name' }),
  runAs: z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, { error: 'must be a user name' }),
  allowUntrustedOnHost: z.union([z.literal(true), z.enum(['1', 'true']).transform(() => true), z.enum(['0', 'false']).transform(() => false)], { error: 'must be 1, true, 0 or false' }),
} as const;

type Field = keyof typeof fields;

/** Each option's flag and variable, for the messages. */
const NAMES: Record<Field, { option: string; variable: string }> = {
  url: { option: '--url', variable: 'DSTACK_AGENT_URL' },
  token: { option: '--token', variable: 'DSTACK_AGENT_TOKEN' },
  name: { option: '--name', variable: 'DSTACK_AGENT_NAME' },
  labels: { option: '--labels', variable: 'DSTACK_AGENT_LABELS' },
  workDir: { option: '--work-dir', variable: 'DSTACK_AGENT_WORK_DIR' },
  isolation: { option: '--isolation', variable: 'DSTACK_AGENT_ISOLATION' },
  image: { option: '--image', variable: 'DSTACK_AGENT_IMAGE' },
  tokenFile: { option: '--token-file', variable: 'DSTACK_AGENT_TOKEN_FILE' },
  runAs: { option: '--run-as', variable: 'DSTACK_AGENT_RUN_AS' },
  allowUntrustedOnHost: { option: '--allow-untrusted-on-host', variable: 'DSTACK_AGENT_ALLOW_UNTRUSTED_ON_HOST' },
};

/**
 * The agent's settings: each from its option, else its DSTACK_AGENT_* variable (so a systemd unit
 * can keep the token out of the command line), else its default. A bad value is one line naming
 * the option or variable it came from, what it must be, and what it was.
 */
export function agentSettings(options: AgentOptions, env: NodeJS.ProcessEnv = process.env): AgentSettings {
  const read = <F extends Field>(field: F): z.infer<(typeof fields)[F]> | undefined => {
    const { option, variable } = NAMES[field];
    // An empty variable counts as unset, as in every other reader (shared/config/read-env.ts).
    const fromOption = options[field];
    const [value, where, kind] = fromOption !== undefined ? [fromOption, option, 'USAGE' as const] : [env[variable] || undefined, variable, 'CONFIG' as const];
    if (value === undefined) return undefined;
    const result = fields[field].safeParse(value);
    if (result.success) return result.data as z.infer<(typeof fields)[F]>;
    const fix = kind === 'USAGE' ? 'fix it' : 'fix or unset it';
    throw new DstackError(`DSTACK_ERR_${kind}`, `${where} ${result.error.issues[0]!.message}, got '${value}'; ${fix}`);
  };
  const url = read('url');
  if (url === undefined) throw new DstackError('DSTACK_ERR_USAGE', "--url (or DSTACK_AGENT_URL) is required: the server's URL, e.g. https://dstack.example.com");
  const hostName = os.hostname();
  const workDir = read('workDir');
  const runAs = read('runAs');
  return {
    url,
    token: agentToken(options, env, read),
    name: read('name') ?? (LABEL.test(hostName) ? hostName.slice(0, 100) : 'agent'),
    labels: [...new Set(read('labels') ?? [])],
    workDir: path.resolve(workDir ?? path.join(os.homedir(), '.dstack-agent')),
    isolation: { mode: read('isolation') ?? 'host', image: read('image') ?? AGENT_DEFAULT_IMAGE },
    ...(runAs !== undefined ? { runAs: lookUpRunAs(runAs) } : {}),
    allowUntrustedOnHost: read('allowUntrustedOnHost') ?? false,
  };
}

/**
 * The token, from the first of: `--token`, `--token-file`, DSTACK_AGENT_TOKEN,
 * DSTACK_AGENT_TOKEN_FILE, the systemd credential `dstack-agent-token`. A file keeps it off the
 * command line (which any user of the machine can read in /proc/PID/cmdline) and out of the
 * environment jobs could inherit.
 */
function agentToken(options: AgentOptions, env: NodeJS.ProcessEnv, read: (field: 'token' | 'tokenFile') => string | undefined): string {
  if (options.token !== undefined && options.tokenFile !== undefined) throw new DstackError('DSTACK_ERR_USAGE', 'give --token or --token-file, not both');
  // An option wins over every variable: `--token-file` over DSTACK_AGENT_TOKEN too.
  const given = options.tokenFile === undefined ? read('token') : undefined;
  if (given !== undefined) return given;
  const credentials = env.CREDENTIALS_DIRECTORY;
  const credential = credentials ? path.join(credentials, TOKEN_CREDENTIAL) : undefined;
  const file = read('tokenFile') ?? (credential && fs.existsSync(credential) ? credential : undefined);
  if (file === undefined) {
    throw new DstackError('DSTACK_ERR_USAGE', `--token-file (or --token, DSTACK_AGENT_TOKEN_FILE, DSTACK_AGENT_TOKEN, the systemd credential ${TOKEN_CREDENTIAL}) is required: an agent token, from 'dstack-app token create --owner OWNER --agent'`);
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new DstackError('DSTACK_ERR_CONFIG', `cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; give a readable file holding the agent token`);
  }
  if (!/^\S+$/.test(text)) throw new DstackError('DSTACK_ERR_CONFIG', `the token file ${file} must hold one agent token, without spaces; it ${text === '' ? 'is empty' : 'holds more'}`);
  return text;
}

/**
 * `--run-as USER`: the agent must be root to switch each job to USER, and USER an existing
 * unprivileged user (root would gain nothing).
 */
function lookUpRunAs(user: string): RunAs {
  if (process.getuid?.() !== 0) {
    throw new DstackError('DSTACK_ERR_USAGE', `--run-as ${user} needs the agent to run as root (it switches each job to ${user}); start it as root, or leave --run-as out`);
  }
  const id = (flag: '-u' | '-g'): number | undefined => {
    try {
      return Number(execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      return undefined; // `id` says the user does not exist
    }
  };
  const uid = id('-u');
  const gid = id('-g');
  if (uid === undefined || gid === undefined || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new DstackError('DSTACK_ERR_USAGE', `--run-as ${user}: there is no user ${user} on this machine; create one (useradd --system --no-create-home ${user}) or name another`);
  }
  if (uid === 0) throw new DstackError('DSTACK_ERR_USAGE', `--run-as ${user}: ${user} is root; name an unprivileged user`);
  return { user, uid, gid };
}
