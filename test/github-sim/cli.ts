/**
 * The playground: `npm run github-sim -- --port P --webhook-url URL [--data-dir DIR]`. Prints one
 * JSON line `{api_url, app_id, private_key_path, webhook_secret}` for the app, serves until
 * SIGINT/SIGTERM, and says on stderr when a response or webhook broke GitHub's schema.
 */
import { parseArgs } from 'node:util';
import { startGithubSim } from './start-github-sim.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '0' }, 'webhook-url': { type: 'string' }, 'data-dir': { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, not ${values.port}`);
  const sim = await startGithubSim({ port, host: values.host, webhookUrl: values['webhook-url'], dataDir: values['data-dir'] });
  process.stdout.write(`${JSON.stringify({ api_url: sim.apiUrl, app_id: sim.appId, private_key_path: sim.privateKeyPath, webhook_secret: sim.webhookSecret })}\n`);
  const watch = setInterval(() => {
    for (const problem of sim.takeSchemaProblems()) process.stderr.write(`${problem}\n`);
  }, 500);
  const stop = async () => {
    clearInterval(watch);
    for (const problem of sim.takeSchemaProblems()) process.stderr.write(`${problem}\n`);
    await sim.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`github-sim: ${err.message}\n`);
  process.exit(1);
});
