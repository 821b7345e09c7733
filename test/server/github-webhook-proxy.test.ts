import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../helpers/cli.js';
import { startGithubSim } from '../github-sim/start-github-sim.js';
import { bareRepo } from '../helpers/git-repo.js';
import { startServer } from '../helpers/server.js';

const closers: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * A webhook relay channel as smee.io serves one: a POST to the channel is sent, headers and JSON
 * body, as a server-sent event to every client listening on it.
 */
async function relayChannel(): Promise<{ url: string; listeners: () => number; close(): Promise<void> }> {
  const clients = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(': ready\n\n');
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const event = JSON.stringify({ ...req.headers, body: JSON.parse(body) as unknown, timestamp: Date.now() });
      for (const client of clients) client.write(`data: ${event}\n\n`);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/channel`,
    listeners: () => clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of clients) c.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('WEBHOOK_PROXY_URL', () => {
  it('takes GitHub webhooks relayed through a smee channel, signature checked as usual', async () => {
    const relay = await relayChannel();
    closers.push(() => relay.close());
    const sim = await startGithubSim();
    closers.push(() => sim.close());
    // GitHub sends to the channel; the server, on a machine GitHub cannot reach, listens to it.
    sim.setWebhookUrl(relay.url);
    const server = await startServer(tempDir(), { ...sim.env(), WEBHOOK_PROXY_URL: relay.url });
    await waitFor(() => relay.listeners() === 1, 20_000, 'the server to listen on the channel');

    const repo = bareRepo({ '.dstack/workflows.yaml': 'workflows:\n  - name: hello\n    provider: bash\n    commands:\n      - echo hi\n' });
    await sim.createRepo({ owner: 'octo', name: 'models', path: repo.work });
    await sim.createInstallation({ account: 'octo' });
    const issue = sim.createIssue({ owner: 'octo', repo: 'models', title: 'experiments' });
    await sim.comment({ owner: 'octo', repo: 'models', number: issue.number, user: 'alice', body: '/dstack help', permission: 'read' });
    const replies = () => sim.comments({ owner: 'octo', repo: 'models' }) as unknown as { user: { login: string }; body: string }[];
    const reply = await waitFor(() => replies().find((c) => c.user.login !== 'alice' && c.body.includes('/dstack run')), 20_000, 'the help reply');
    expect(reply!.body).toContain('/dstack run WORKFLOW');
    expect(server.output()).toMatch(/POST http:\/\/\S+\/api\/github\/webhooks - 200/);
    // Anyone can post to a channel: what does not carry GitHub's signature is refused all the same.
    await fetch(relay.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'issue_comment', 'x-github-delivery': 'forged-1', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
      body: JSON.stringify({ action: 'created' }),
    });
    await waitFor(() => /POST http:\/\/\S+\/api\/github\/webhooks - 400/.test(server.output()), 10_000, 'the forged webhook to be refused');
  });
});
