import { DstackError } from '../../shared/errors.js';
import { checkIsolation, ConfigFile, DEFAULT_ISOLATION_IMAGE } from '../local/config-file.js';
import { dstackHome } from '../local/home.js';

export interface ConfigOptions {
  isolation?: string;
  image?: string;
  url?: string;
  token?: string;
  local?: boolean;
  json?: boolean;
}

/**
 * `dstack config`: keeps settings for later runs; with no options, prints them. `--url URL --token
 * TOKEN` puts every command in remote mode, once the server has said whose the token is;
 * `--local` goes back. The token is never printed.
 */
export async function configCommand(opts: ConfigOptions): Promise<void> {
  const file = new ConfigFile(dstackHome());
  if ((opts.url === undefined) !== (opts.token === undefined)) {
    throw new DstackError('DSTACK_ERR_USAGE', 'give --url and --token together: dstack config --url URL --token TOKEN');
  }
  if (opts.local && opts.url !== undefined) throw new DstackError('DSTACK_ERR_USAGE', '--local and --url contradict each other; give one');
  const changes = {
    ...(opts.isolation !== undefined ? { isolation: checkIsolation(opts.isolation) } : {}),
    ...(opts.image !== undefined ? { image: opts.image } : {}),
    ...(opts.local ? { server: undefined } : {}),
  };
  let owner: string | undefined;
  if (opts.url !== undefined && opts.token !== undefined) {
    const server = { url: checkUrl(opts.url), token: opts.token };
    const { RemoteClient } = await import('../client/remote-client.js');
    owner = await new RemoteClient(server).owner();
    Object.assign(changes, { server });
  }
  const config = Object.keys(changes).length || opts.local ? file.update(changes) : file.read();
  if (config.server && owner === undefined) {
    // Say whose the saved token is; a server that cannot be asked now does not stop `dstack config`.
    const { RemoteClient } = await import('../client/remote-client.js');
    owner = await new RemoteClient(config.server).owner().catch(() => undefined);
  }
  const effective = {
    isolation: config.isolation ?? 'host',
    image: config.image ?? DEFAULT_ISOLATION_IMAGE,
    mode: config.server ? 'remote' : 'local',
    server: config.server ? { url: config.server.url, owner: owner ?? null } : null,
  };
  if (opts.json) {
    process.stdout.write(JSON.stringify(effective, null, 2) + '\n');
    return;
  }
  // Local mode prints what it always has; remote mode says where commands go first.
  const server = effective.server ? `mode: remote\nserver: ${effective.server.url}\nowner: ${effective.server.owner ?? '(the server cannot be reached now)'}\n` : opts.local ? 'mode: local\n' : '';
  process.stdout.write(`${server}isolation: ${effective.isolation}\nimage: ${effective.image}\n`);
}

function checkUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (!url || !/^https?:$/.test(url.protocol)) throw new DstackError('DSTACK_ERR_USAGE', `invalid --url '${value}': the server's http:// or https:// URL, e.g. https://dstack.example.com`);
  return value.replace(/\/+$/, '');
}
