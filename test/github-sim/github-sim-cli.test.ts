import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

describe('npm run github-sim', () => {
  it('prints one JSON line for the app, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'test/github-sim/cli.ts', '--port', '0', '--webhook-url', 'http://127.0.0.1:9/hooks'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let out = '';
    const line = await new Promise<string>((resolve) => child.stdout.on('data', (d: Buffer) => (out += d.toString()).includes('\n') && resolve(out)));
    const info = JSON.parse(line);
    expect(Object.keys(info)).toEqual(['api_url', 'app_id', 'private_key_path', 'webhook_secret']);
    expect(info.api_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v3$/);
    const sim = await (await fetch(info.api_url.replace('/api/v3', '/_sim'))).json();
    expect(sim).toMatchObject({ app_id: info.app_id, webhook_url: 'http://127.0.0.1:9/hooks' });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
