import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DstackError } from '../../shared/errors.js';

export const ISOLATIONS = ['host', 'docker'] as const;
export type IsolationMode = (typeof ISOLATIONS)[number];

/** The image bash and python jobs run in under `docker` isolation, unless told otherwise. */
export const DEFAULT_ISOLATION_IMAGE = 'python:3.11-slim';

/** Where remote mode's server is, and the user token for it (`dstack config --url --token`). */
const serverSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  token: z.string().min(1),
});

const configSchema = z.strictObject({
  isolation: z.enum(ISOLATIONS).optional(),
  image: z.string().min(1).optional(),
  server: serverSchema.optional(),
});

export type ServerConfig = z.infer<typeof serverSchema>;

export type Config = z.infer<typeof configSchema>;

/** `DSTACK_HOME/config.json`, written by `dstack config`. */
export class ConfigFile {
  readonly file: string;

  constructor(home: string) {
    this.file = path.join(home, 'config.json');
  }

  read(): Config {
    let value: unknown;
    try {
      value = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw this.invalid((err as Error).message);
    }
    const parsed = configSchema.safeParse(value);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    const key = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
    throw this.invalid(issue.code === 'unrecognized_keys' ? `unknown key '${key}'` : `'${key}' ${issue.message}`);
  }

  private invalid(what: string): DstackError {
    return new DstackError('DSTACK_ERR_CONFIG', `cannot read ${this.file}: ${what}; fix it, or remove it and run 'dstack config' again`);
  }

  /** Merges `changes` in (a key set to undefined is removed). The file may hold a token: it is the user's only (0600). */
  update(changes: Config): Config {
    const next = { ...this.read(), ...changes };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(next, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    return next;
  }
}

export function checkIsolation(value: string): IsolationMode {
  if ((ISOLATIONS as readonly string[]).includes(value)) return value as IsolationMode;
  throw new DstackError('DSTACK_ERR_USAGE', `unknown isolation '${value}'; use one of: ${ISOLATIONS.join(', ')}`);
}
