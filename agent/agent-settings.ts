import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DstackError } from '../shared/errors.js';
import type { Isolation } from './job-runner.js';

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
}

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
  const required = <F extends 'url' | 'token'>(field: F, what: string) => {
    const value = read(field);
    if (value === undefined) throw new DstackError('DSTACK_ERR_USAGE', `${NAMES[field].option} (or ${NAMES[field].variable}) is required: ${what}`);
    return value;
  };
  const url = required('url', "the server's URL, e.g. https://dstack.example.com");
  const token = required('token', "an agent token, from 'dstack-app token create --owner OWNER --agent'");
  const hostName = os.hostname();
  const workDir = read('workDir');
  return {
    url,
    token,
    name: read('name') ?? (LABEL.test(hostName) ? hostName.slice(0, 100) : 'agent'),
    labels: [...new Set(read('labels') ?? [])],
    workDir: path.resolve(workDir ?? path.join(os.homedir(), '.dstack-agent')),
    isolation: { mode: read('isolation') ?? 'host', image: read('image') ?? AGENT_DEFAULT_IMAGE },
  };
}
