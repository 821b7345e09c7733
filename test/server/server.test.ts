import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { app, createToken, startServer as start } from '../helpers/server.js';

describe('dstack-app', () => {
  it('creates tokens shown once, keeps only their hash, lists them and revokes them', async () => {
    const dataDir = tempDir();
    const agent = await createToken(dataDir, 'acme', 'agent');
    const user = await createToken(dataDir, 'acme-bot', 'user');
    expect(agent.token).toMatch(/^dstack_[A-Za-z0-9_-]{43}$/);
    const list = JSON.parse((await app(['token', 'list', '--json'], { DSTACK_DATA_DIR: dataDir })).stdout);
    expect(list.map((t: { id: string; owner: string; kind: string; revoked_at: string | null }) => [t.id, t.owner, t.kind, t.revoked_at])).toEqual([
      [agent.id, 'acme', 'agent', null],
      [user.id, 'acme-bot', 'user', null],
    ]);
    expect(JSON.stringify(list)).not.toContain(agent.token);
    // The secret is nowhere in the data folder (the database and its WAL included).
    for (const f of fs.readdirSync(dataDir)) {
      if (fs.statSync(path.join(dataDir, f)).isFile()) expect(fs.readFileSync(path.join(dataDir, f)).includes(agent.token.slice(7))).toBe(false);
    }
    expect((await app(['token', 'revoke', agent.id], { DSTACK_DATA_DIR: dataDir })).stdout).toBe(`Revoked ${agent.id}\n`);
    const again = await app(['token', 'revoke', agent.id], { DSTACK_DATA_DIR: dataDir });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`dstack-app: error: no token '${agent.id}' (or it is revoked already); 'dstack-app token list' lists them\n`);
    const bad = await app(['token', 'create', '--owner', 'bad owner!', '--user'], { DSTACK_DATA_DIR: dataDir });
    expect(bad.stderr).toBe("dstack-app: error: invalid owner 'bad owner!': a GitHub user or organisation name (letters, digits and single hyphens, at most 39)\n");
  });

  it('serves /healthz and /metrics, and answers 401 and nothing else to a missing, wrong, revoked or wrong-kind token', async () => {
    const dataDir = tempDir();
    const user = await createToken(dataDir, 'acme', 'user');
    const agent = await createToken(dataDir, 'acme', 'agent');
    const revoked = await createToken(dataDir, 'acme', 'user');
    await app(['token', 'revoke', revoked.id], { DSTACK_DATA_DIR: dataDir });
    const { url } = await start(dataDir);
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ ok: true });
    const auth = (token?: string) => fetch(`${url}/api/user`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect(await (await auth(user.token)).json()).toEqual({ owner: 'acme' });
    for (const token of [undefined, 'dstack_wrong', revoked.token, agent.token]) {
      const r = await auth(token);
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ error: 'a valid user token is required: Authorization: Bearer TOKEN' });
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('# TYPE dstack_agents_connected gauge\ndstack_agents_connected 0\n');
    expect(metrics).toContain('dstack_jobs{status="running"} 0\n');
    expect(metrics).toContain('# TYPE dstack_dispatch_latency_seconds histogram\n');
    expect(metrics).toContain('# TYPE dstack_log_bytes_total counter\n');
    expect(metrics).toContain('dstack_http_requests_total{code="200",route="/api/user"} 1\n');
    expect(metrics).toContain('dstack_http_requests_total{code="401",route="/api/user"} 4\n');
    expect(metrics).toContain('dstack_http_requests_total{code="200",route="/healthz"} 1\n');
  });

  it('refuses a bad setting in one line, and stops cleanly on SIGTERM', async () => {
    const bad = await app([], { PORT: 'abc', DSTACK_DATA_DIR: tempDir() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("dstack-app: error: PORT must be a port number (0-65535), got 'abc'; fix or unset it\n");
    const { url, child, exited } = await start(tempDir());
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
