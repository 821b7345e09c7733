import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { Webhooks } from '@octokit/webhooks';
import { createNodeMiddleware, createProbot } from 'probot';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFiles } from '../helpers/cli.js';
import { simWithRepo, webhookReceiver } from './sim-fixtures.js';
import { startGithubSim, type GithubSim } from './start-github-sim.js';

const run = promisify(execFile);
const GIT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Alice', GIT_AUTHOR_EMAIL: 'alice@example.com', GIT_COMMITTER_NAME: 'Alice', GIT_COMMITTER_EMAIL: 'alice@example.com' };
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const toClose: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

async function setup() {
  const receiver = await webhookReceiver();
  const s = await simWithRepo(undefined, receiver.url);
  toClose.push(receiver, s.sim);
  return { ...s, receiver };
}

describe('github-sim webhooks', () => {
  it('sends signed installation, pull_request and issue_comment events that @octokit/webhooks verifies', async () => {
    const { sim, receiver, installation } = await setup();
    const verifier = new Webhooks({ secret: sim.webhookSecret });
    const pr = await sim.createPull({ owner: 'acme', repo: 'ml', head: 'main', title: 'Train' });
    const created = await sim.comment({ owner: 'acme', repo: 'ml', number: pr.number, user: 'alice', permission: 'write', body: '/dstack run train' });
    await sim.editComment({ owner: 'acme', repo: 'ml', id: created.id, body: '/dstack run train --epochs 3' });
    expect(receiver.received.map((r) => `${r.headers['x-github-event']}.${JSON.parse(r.body).action}`)).toEqual(['installation.created', 'pull_request.opened', 'issue_comment.created', 'issue_comment.edited']);
    for (const hook of receiver.received) {
      expect(await verifier.verify(hook.body, String(hook.headers['x-hub-signature-256']))).toBe(true);
      expect(hook.headers['x-github-delivery']).toMatch(/^[0-9a-f-]{36}$/);
      expect(hook.headers['x-github-hook-installation-target-id']).toBe(String(sim.appId));
    }
    expect(await verifier.verify(receiver.received[0]!.body, 'sha256=' + '0'.repeat(64))).toBe(false);
    const [inst, opened, comment, edited] = receiver.received.map((r) => JSON.parse(r.body));
    expect(inst).toMatchObject({ installation: { id: installation.id, account: { login: 'acme' } }, repositories: [{ full_name: 'acme/ml' }] });
    expect(opened).toMatchObject({ number: pr.number, pull_request: { head: { sha: pr.head_sha } }, installation: { id: installation.id } });
    expect(comment).toMatchObject({ comment: { id: created.id, body: '/dstack run train', user: { login: 'alice' } }, issue: { number: pr.number, pull_request: {} }, sender: { login: 'alice' } });
    expect(edited).toMatchObject({ changes: { body: { from: '/dstack run train' } }, comment: { body: '/dstack run train --epochs 3' } });
    expect(comment.organization).toBeUndefined();
    expect(created.delivery).toMatchObject({ status: 202, event: 'issue_comment' });
  });

  it('sends the same delivery again with the same id', async () => {
    const { sim, receiver } = await setup();
    const issue = sim.createIssue({ owner: 'acme', repo: 'ml', title: 'Bug' });
    const { delivery } = await sim.comment({ owner: 'acme', repo: 'ml', number: issue.number, user: 'bob', body: '/dstack help' });
    expect(await sim.redeliver(delivery!.id)).toMatchObject({ id: delivery!.id, status: 202 });
    const both = receiver.received.filter((r) => r.headers['x-github-event'] === 'issue_comment');
    expect(both.map((r) => r.headers['x-github-delivery'])).toEqual([delivery!.id, delivery!.id]);
    expect(both[0]!.body).toBe(both[1]!.body);
  });

  it('sends a signed push webhook when a commit is pushed over git HTTP with an installation token', async () => {
    const { sim, receiver, installation, repo, commit } = await setup();
    const { token } = sim.createToken(installation.id, { repositories: ['ml'], permissions: { contents: 'write' } });
    const dir = `${sim.dataDir}/clone`;
    await run('git', ['clone', '--quiet', repo.clone_url.replace('http://', `http://x-access-token:${token}@`), dir], { env: GIT_ENV });
    writeFiles(dir, { 'data.csv': 'a,b\n' });
    await run('git', ['-C', dir, 'add', '-A'], { env: GIT_ENV });
    await run('git', ['-C', dir, 'commit', '--quiet', '-m', 'Add data'], { env: GIT_ENV });
    await run('git', ['-C', dir, 'push', '--quiet', 'origin', 'main'], { env: GIT_ENV });
    const head = (await run('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
    const hook = await receiver.next('push');
    expect(await new Webhooks({ secret: sim.webhookSecret }).verify(hook.body, String(hook.headers['x-hub-signature-256']))).toBe(true);
    expect(JSON.parse(hook.body)).toMatchObject({
      ref: 'refs/heads/main', before: commit, after: head, created: false, forced: false,
      commits: [{ id: head, message: 'Add data', added: ['data.csv'], author: { email: 'alice@example.com' } }],
      repository: { full_name: 'acme/ml' }, installation: { id: installation.id }, sender: { login: 'dstack-sim[bot]' },
    });
    const octokit = new Octokit({ baseUrl: sim.apiUrl, auth: token, log: quiet });
    expect((await octokit.rest.git.getRef({ owner: 'acme', repo: 'ml', ref: 'heads/main' })).data.object.sha).toBe(head);
  });

  it('sends push webhooks for a folder pushed through the admin API, one per changed ref', async () => {
    const { sim, receiver, work } = await setup();
    await run('git', ['-C', work, 'checkout', '--quiet', '-b', 'exp'], { env: GIT_ENV });
    writeFiles(work, { 'b.txt': 'b\n' });
    await run('git', ['-C', work, 'add', '-A'], { env: GIT_ENV });
    await run('git', ['-C', work, 'commit', '--quiet', '-m', 'exp'], { env: GIT_ENV });
    await run('git', ['-C', work, 'tag', 'v1'], { env: GIT_ENV });
    const { deliveries } = await sim.push({ owner: 'acme', repo: 'ml', path: work, user: 'alice' });
    expect(deliveries).toHaveLength(2);
    const pushes = receiver.received.filter((r) => r.headers['x-github-event'] === 'push').map((r) => JSON.parse(r.body));
    expect(pushes.map((p) => [p.ref, p.created, p.commits.length, p.sender.login])).toEqual([['refs/heads/exp', true, 1, 'alice'], ['refs/tags/v1', true, 1, 'alice']]);
  });

  it('sends check_run rerequested and requested_action for a check run the app made', async () => {
    const { sim, receiver, installation, commit } = await setup();
    const octokit = new Octokit({ baseUrl: sim.apiUrl, auth: sim.createToken(installation.id).token, log: quiet });
    const made = await octokit.rest.checks.create({ owner: 'acme', repo: 'ml', name: 'dstack/train', head_sha: commit, conclusion: 'success', output: { title: 'done', summary: 's' }, actions: [{ label: 'Tag as latest', description: 'Make a release', identifier: 'tag-latest' }] });
    await sim.rerequestCheckRun(made.data.id, 'alice');
    await sim.requestAction(made.data.id, 'tag-latest', 'alice');
    await expect(sim.requestAction(made.data.id, 'stop')).rejects.toThrow(/has no button stop/);
    const hooks = receiver.received.filter((r) => r.headers['x-github-event'] === 'check_run').map((r) => JSON.parse(r.body));
    expect(hooks).toMatchObject([
      { action: 'rerequested', check_run: { id: made.data.id, head_sha: commit, name: 'dstack/train', app: { id: sim.appId } }, sender: { login: 'alice' } },
      { action: 'requested_action', requested_action: { identifier: 'tag-latest' }, check_run: { id: made.data.id } },
    ]);
  });

  it('drives a real Probot app: its middleware accepts the signed webhook and its context Octokit answers', async () => {
    const sim = await startGithubSim();
    toClose.push(sim);
    const seen: string[] = [];
    const probot = createProbot({ env: { ...sim.env(), LOG_LEVEL: 'fatal' } });
    const middleware = await createNodeMiddleware(
      (app) => {
        app.on('issue_comment.created', async (context) => {
          seen.push(context.payload.comment.body);
          await context.octokit.rest.reactions.createForIssueComment(context.repo({ comment_id: context.payload.comment.id, content: 'eyes' }));
        });
      },
      { probot },
    );
    const server = http.createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    toClose.push({ close: () => new Promise((resolve) => server.close(resolve)) });
    sim.setWebhookUrl(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`);
    const { work } = (await import('../helpers/git-repo.js')).bareRepo({ 'a.txt': 'a\n' });
    await sim.createRepo({ owner: 'acme', name: 'ml', path: work });
    await sim.createInstallation({ account: 'acme' });
    const issue = sim.createIssue({ owner: 'acme', repo: 'ml', title: 'x' });
    const { id, delivery } = await sim.comment({ owner: 'acme', repo: 'ml', number: issue.number, user: 'alice', body: '/dstack help' });
    expect(delivery?.status).toBe(200);
    expect(seen).toEqual(['/dstack help']);
    expect(sim.comments({ owner: 'acme', repo: 'ml' }).find((c) => c.id === id)?.reactions_list).toEqual([{ content: 'eyes', user: 'dstack-sim[bot]' }]);
  });
});

describe('github-sim faults and request counts', () => {
  /** The statuses of `n` GET /repos/acme/ml under a 30% fault rule with `seed`. */
  async function statuses(seed: number, n: number): Promise<number[]> {
    const s = await simWithRepo();
    toClose.push(s.sim);
    const octokit = new Octokit({ baseUrl: s.sim.apiUrl, auth: s.sim.createToken(s.installation.id).token, log: quiet, request: { retries: 0 } });
    s.sim.faults.set({ rate: 0.3, kinds: ['rate-limit-429', 'secondary-403', 'server-500'], seed, retryAfter: 7 });
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await octokit.rest.repos.get({ owner: 'acme', repo: 'ml' }).then((r) => r.status, (e) => e.status));
    expect(s.sim.requests.count('repos/get')).toBe(n);
    return out;
  }

  it('fails the same requests for the same seed, with GitHub rate limit answers', async () => {
    const a = await statuses(42, 30);
    expect(await statuses(42, 30)).toEqual(a);
    expect(a.filter((s) => s !== 200).length).toBeGreaterThan(3);
    expect(a.filter((s) => s !== 200).length).toBeLessThan(18);
    expect(await statuses(7, 30)).not.toEqual(a);
  });

  it('answers queued faults with retry-after, the secondary limit message and x-ratelimit headers', async () => {
    const { sim, installation } = await simWithRepo();
    toClose.push(sim);
    const octokit = new Octokit({ baseUrl: sim.apiUrl, auth: sim.createToken(installation.id).token, log: quiet, request: { retries: 0 } });
    sim.faults.failNext('rate-limit-429', 1, ['repos/get'], 3);
    sim.faults.failNext('secondary-403', 1, ['repos/get'], 60);
    sim.faults.failNext('unavailable-503', 1);
    const limited = await octokit.rest.repos.get({ owner: 'acme', repo: 'ml' }).catch((e) => e);
    expect(limited).toMatchObject({ status: 429, response: { headers: { 'retry-after': '3', 'x-ratelimit-remaining': '0' } } });
    const secondary = await octokit.rest.repos.get({ owner: 'acme', repo: 'ml' }).catch((e) => e);
    expect(secondary).toMatchObject({ status: 403, response: { headers: { 'retry-after': '60' } } });
    expect(secondary.response.data.message).toMatch(/secondary rate limit/);
    expect(await octokit.rest.repos.get({ owner: 'acme', repo: 'ml' }).catch((e) => e.status)).toBe(503);
    expect((await octokit.rest.repos.get({ owner: 'acme', repo: 'ml' })).status).toBe(200);
    expect(sim.requests.counts()).toMatchObject({ 'repos/get': 4 });
    expect(sim.faults.injected().map((f) => f.kind)).toEqual(['rate-limit-429', 'secondary-403', 'unavailable-503']);
  });

  it('is driven over HTTP by its admin API', async () => {
    const receiver = await webhookReceiver();
    const sim = await startGithubSim();
    toClose.push(receiver, sim);
    const { work } = (await import('../helpers/git-repo.js')).bareRepo({ 'a.txt': 'a\n' });
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${sim.baseUrl}/_sim${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    expect((await admin('PUT', '/webhook', { url: receiver.url })).status).toBe(200);
    const repo = await admin('POST', '/repos', { owner: 'acme', name: 'ml', path: work });
    expect(repo.body.clone_url).toBe(`${sim.baseUrl}/acme/ml.git`);
    expect((await admin('POST', '/installations', { account: 'acme' })).body.delivery.status).toBe(202);
    const pr = await admin('POST', '/repos/acme/ml/pulls', { head: 'main', base: 'main', title: 'T' });
    expect(pr.body.number).toBe(1);
    const c = await admin('POST', `/repos/acme/ml/issues/${pr.body.number}/comments`, { user: 'alice', permission: 'write', body: '/dstack run train' });
    expect(c.body.delivery).toMatchObject({ event: 'issue_comment', action: 'created', status: 202 });
    expect((await admin('PATCH', `/repos/acme/ml/issues/comments/${c.body.id}`, { body: 'edited' })).body.delivery.action).toBe('edited');
    expect((await admin('POST', `/deliveries/${c.body.delivery.id}/redeliver`)).body.id).toBe(c.body.delivery.id);
    expect((await admin('GET', '/repos/acme/ml/comments')).body).toMatchObject([{ body: 'edited', user: { login: 'alice' } }]);
    expect((await admin('GET', '/repos/acme/ml/check-runs')).body).toEqual([]);
    expect((await admin('GET', '/repos/acme/ml/releases')).body).toEqual([]);
    expect((await admin('POST', '/faults', { rate: 2, kinds: ['server-500'] })).status).toBe(400);
    expect((await admin('POST', '/repos/acme/none/pulls', { head: 'main', title: 'x' })).status).toBe(404);
    expect((await admin('GET', '/requests')).body.counts).toEqual({});
    expect((await admin('GET', '')).body).toMatchObject({ app_id: sim.appId, api_url: sim.apiUrl });
  });
});
