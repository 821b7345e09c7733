import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bareRepo } from '../helpers/git-repo.js';
import { startGithubSim, type GithubSim } from './start-github-sim.js';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A webhook endpoint on port 0 that keeps what it gets and answers 202, as an app would. */
export async function webhookReceiver(): Promise<{ url: string; received: ReceivedWebhook[]; next(event: string): Promise<ReceivedWebhook>; close(): Promise<void> }> {
  const received: ReceivedWebhook[] = [];
  const waiters: { event: string; resolve: (w: ReceivedWebhook) => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hook = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(hook);
      for (const w of waiters.splice(0)) if (w.event === req.headers['x-github-event']) w.resolve(hook);
      else waiters.push(w);
      res.writeHead(202).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`,
    received,
    next: (event) => {
      const seen = received.find((r) => r.headers['x-github-event'] === event);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ event, resolve }));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A sim with `acme/ml` (one commit of `files` on main), the app installed on acme. */
export async function simWithRepo(files: Record<string, string> = { '.dstack/workflows.yaml': 'workflows: []\n', 'src/train.py': 'print(1)\n' }, webhookUrl?: string) {
  const sim: GithubSim = await startGithubSim({ webhookUrl });
  const { work, commit } = bareRepo(files);
  const repo = await sim.createRepo({ owner: 'acme', name: 'ml', path: work });
  const installation = await sim.createInstallation({ account: 'acme' });
  return { sim, work, commit, repo, installation };
}
