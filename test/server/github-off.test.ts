import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { app, startServer } from '../helpers/server.js';

/** A module to `--import` that notes every module the process resolves whose specifier names probot. */
function probotWatch(): { options: string; loaded: () => string[] } {
  const dir = tempDir('dstack-watch-');
  const record = path.join(dir, 'resolved');
  fs.writeFileSync(
    path.join(dir, 'hooks.mjs'),
    `import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  if (/probot|@octokit/.test(specifier)) fs.appendFileSync(${JSON.stringify(record)}, specifier + '\\n');\n  return next(specifier, context);\n}\n`,
  );
  fs.writeFileSync(path.join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${dir}/hooks.mjs`)});\n`);
  return { options: `--import=file://${dir}/register.mjs`, loaded: () => (fs.existsSync(record) ? fs.readFileSync(record, 'utf8').split('\n').filter(Boolean) : []) };
}

describe('dstack-app without the GitHub App variables', () => {
  it('serves the CLI only, never loading Probot, and has no webhook route', async () => {
    const watch = probotWatch();
    const server = await startServer(tempDir(), { NODE_OPTIONS: watch.options });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/github/webhooks`, { method: 'POST' })).status).toBe(404);
    expect(server.output()).not.toContain('GitHub App');
    expect(watch.loaded()).toEqual([]);
    await server.stop();
  });

  it('loads Probot once configured, and refuses half a configuration in one line naming the variable', async () => {
    const key = path.join(tempDir(), 'app.pem');
    fs.writeFileSync(key, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const watch = probotWatch();
    const server = await startServer(tempDir(), { NODE_OPTIONS: watch.options, APP_ID: '7', PRIVATE_KEY_PATH: key, WEBHOOK_SECRET: 's', LOG_LEVEL: 'warn' });
    expect(server.output()).toContain('GitHub App 7 (https://api.github.com): webhooks at http://127.0.0.1:');
    expect(watch.loaded()).toContain('probot');
    // Unsigned: refused by Probot's verification.
    const res = await fetch(`${server.url}/api/github/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': '1', 'x-hub-signature-256': 'sha256=00' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    await server.stop();

    const half = await app([], { DSTACK_DATA_DIR: tempDir(), PORT: '0', APP_ID: '7', WEBHOOK_SECRET: 's' });
    expect(half.code).toBe(1);
    expect(half.stderr).toBe(
      'dstack-app: error: PRIVATE_KEY or PRIVATE_KEY_PATH is not set: the GitHub App needs the private key (.pem) generated for the app (or unset APP_ID, PRIVATE_KEY, PRIVATE_KEY_PATH and WEBHOOK_SECRET to serve the CLI only)\n',
    );
  });
});
