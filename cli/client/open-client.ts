import { ConfigFile } from '../local/config-file.js';
import { dstackHome } from '../local/home.js';
import type { DstackClient } from './dstack-client.js';

/**
 * The client the commands use: a server's when `dstack config --url --token` saved one, else this
 * machine's state. Each is imported only when chosen, so remote mode never opens the local store.
 */
export async function openClient(env: NodeJS.ProcessEnv = process.env): Promise<DstackClient> {
  const server = new ConfigFile(dstackHome(env)).read().server;
  if (server) {
    const { RemoteClient } = await import('./remote-client.js');
    return new RemoteClient(server);
  }
  const { LocalClient } = await import('./local-client.js');
  return new LocalClient(env);
}
