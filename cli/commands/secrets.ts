import { DstackError } from '../../shared/errors.js';
import { table } from '../output/table.js';
import { ago, iso } from '../output/time.js';
import { dstackHome } from '../local/home.js';
import { SecretStore } from '../local/secret-store.js';

/** `dstack secrets add NAME`: the value comes from stdin, or a prompt that does not echo; never an argument. */
export async function secretsAddCommand(name: string): Promise<void> {
  const store = new SecretStore(dstackHome());
  const value = process.stdin.isTTY ? await prompt(`Value of ${name}: `) : await readStdin();
  if (value === '') throw new DstackError('DSTACK_ERR_USAGE', `the value of secret '${name}' is empty; pipe it in (printf %s VALUE | dstack secrets add ${name}) or type it at the prompt`);
  const existed = store.set(name, value);
  process.stdout.write(`${existed ? 'Updated' : 'Added'} secret ${name}\n`);
}

export function secretsListCommand(opts: { json?: boolean }): void {
  const names = new SecretStore(dstackHome()).names();
  if (opts.json) {
    process.stdout.write(JSON.stringify(names.map((s) => ({ name: s.name, updated_at: iso(s.updated_at) })), null, 2) + '\n');
    return;
  }
  process.stdout.write(table(['NAME', 'UPDATED'], names.map((s) => [s.name, ago(s.updated_at)])));
}

export function secretsDeleteCommand(name: string): void {
  new SecretStore(dstackHome()).delete(name);
  process.stdout.write(`Deleted secret ${name}\n`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // A trailing newline from `echo` or a heredoc is not part of the secret.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function prompt(question: string): Promise<string> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          process.stderr.write('\n');
          process.exit(130);
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
