import { createServer } from './server.js';
import { serverSettings } from './settings.js';

/** `dstack-app`: serves until SIGINT or SIGTERM, then closes its sockets and its store. */
export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = serverSettings(env);
  const server = createServer({ dataDir: settings.dataDir, agentLostAfterMs: settings.agentLostSeconds * 1000, publicUrl: settings.publicUrl });
  const address = await server.listen(settings.port, settings.host);
  process.stdout.write(`dstack-app listening on http://${address.address}:${address.port} (data in ${settings.dataDir})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
}
