import { githubSettings } from '../github/github-settings.js';
import { createServer } from './server.js';
import { serverSettings } from './settings.js';

/**
 * `dstack-app`: serves until SIGINT or SIGTERM, then closes its sockets and its store. With the
 * GitHub App's variables (APP_ID, PRIVATE_KEY…), it also takes GitHub's webhooks; Probot is loaded
 * only then.
 */
export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = serverSettings(env);
  const github = githubSettings(env);
  const server = createServer({ dataDir: settings.dataDir, agentLostAfterMs: settings.agentLostSeconds * 1000, publicUrl: settings.publicUrl });
  const app = github ? await (await import('../github/github-app.js')).startGithubApp(server, github, settings.dataDir) : undefined;
  const address = await server.listen(settings.port, settings.host);
  process.stdout.write(`dstack-app listening on http://${address.address}:${address.port} (data in ${settings.dataDir})\n`);
  if (app) process.stdout.write(`GitHub App ${github!.appId} (${github!.apiUrl}): webhooks at ${app.webhooksUrl(address)}\n`);
  const proxy = app && github!.webhookProxyUrl ? await app.proxyWebhooks(github!.webhookProxyUrl, address) : undefined;
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  proxy?.close();
  await app?.close();
  await server.close();
}
