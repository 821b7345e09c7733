import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DstackError } from '../../shared/errors.js';
import { SECRET_NAME } from '../../shared/secrets.js';

interface Entry {
  value: string;
  updated_at: number;
}

/**
 * Secrets of local mode, in `DSTACK_HOME/secrets.json`: outside any repository, readable by the
 * owner only (0600, in a 0700 folder), replaced atomically on every change.
 */
export class SecretStore {
  private readonly file: string;

  constructor(home: string) {
    this.file = path.join(home, 'secrets.json');
  }

  names(): { name: string; updated_at: number }[] {
    return Object.entries(this.read())
      .map(([name, e]) => ({ name, updated_at: e.updated_at }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  values(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.read()).map(([k, e]) => [k, e.value]));
  }

  set(name: string, value: string): boolean {
    checkName(name);
    const all = this.read();
    const existed = name in all;
    all[name] = { value, updated_at: Date.now() };
    this.write(all);
    return existed;
  }

  delete(name: string): void {
    const all = this.read();
    if (!(name in all)) {
      throw new DstackError('DSTACK_ERR_SECRET_UNKNOWN', `unknown secret '${name}'; 'dstack secrets list' lists them`);
    }
    delete all[name];
    this.write(all);
  }

  private read(): Record<string, Entry> {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as Record<string, Entry>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new DstackError('DSTACK_ERR_SECRETS_FILE', `cannot read ${this.file}: ${(err as Error).message}; fix the file, or move it away and add the secrets again`, { cause: err });
    }
  }

  private write(all: Record<string, Entry>): void {
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, JSON.stringify(all, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name)) {
    throw new DstackError('DSTACK_ERR_USAGE', `invalid secret name '${name}': use letters, digits and '_', not starting with a digit`);
  }
}
