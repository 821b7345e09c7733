import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { createProbot } from 'probot';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { bareRepo } from '../helpers/git-repo.js';
import { simWithRepo } from './sim-fixtures.js';
import type { GithubSim } from './start-github-sim.js';

const run = promisify(execFile);
let sim: GithubSim | undefined;
afterEach(async () => {
  // close() throws when any response broke GitHub's schema: that fails the test.
  await sim?.close();
  sim = undefined;
});

/** Probot's own Octokit, configured from the variables the app gets (GHE_HOST, GHE_PROTOCOL). */
function probotFor(s: GithubSim) {
  return createProbot({ env: { ...s.env(), LOG_LEVEL: 'fatal' } });
}

describe('github-sim REST API through Probot and Octokit', () => {
  it('answers the app routes with its JWT, as Probot reaches them from GHE_HOST and GHE_PROTOCOL', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const app = await probotFor(sim).auth();
    expect((await app.rest.apps.getAuthenticated()).data).toMatchObject({ id: sim.appId, slug: 'dstack-sim' });
    expect((await app.rest.apps.listInstallations()).data.map((i) => i.id)).toEqual([setup.installation.id]);
    expect((await app.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'ml' })).data.account).toMatchObject({ login: 'acme' });
    const token = await app.rest.apps.createInstallationAccessToken({ installation_id: setup.installation.id, repositories: ['ml'], permissions: { contents: 'read' } });
    expect(token.status).toBe(201);
    expect(token.data.token).toMatch(/^ghs_\w{36}$/);
    expect(Date.parse(token.data.expires_at) - Date.now()).toBeGreaterThan(59 * 60 * 1000);
    expect(token.data.repositories?.map((r) => r.full_name)).toEqual(['acme/ml']);
  });

  it('serves the repository, a permission, a pull request and contents at a ref', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const gh = await probotFor(sim).auth(setup.installation.id);
    expect((await gh.rest.repos.get({ owner: 'acme', repo: 'ml' })).data).toMatchObject({ full_name: 'acme/ml', default_branch: 'main', clone_url: setup.repo.clone_url });
    const pr = await sim.createPull({ owner: 'acme', repo: 'ml', head: 'main', title: 'Train' });
    await sim.comment({ owner: 'acme', repo: 'ml', number: pr.number, user: 'alice', permission: 'maintain', body: 'hi' });
    expect((await gh.rest.repos.getCollaboratorPermissionLevel({ owner: 'acme', repo: 'ml', username: 'alice' })).data).toMatchObject({ permission: 'write', role_name: 'maintain' });
    expect((await gh.rest.pulls.get({ owner: 'acme', repo: 'ml', pull_number: pr.number })).data.head.sha).toBe(setup.commit);
    const file = (await gh.rest.repos.getContent({ owner: 'acme', repo: 'ml', path: '.dstack/workflows.yaml', ref: setup.commit })).data as { content: string; encoding: string };
    expect(file.encoding).toBe('base64');
    expect(Buffer.from(file.content, 'base64').toString()).toBe('workflows: []\n');
    const root = (await gh.rest.repos.getContent({ owner: 'acme', repo: 'ml', path: '' })).data as { path: string; type: string }[];
    expect(root.map((e) => [e.path, e.type])).toEqual([['.dstack', 'dir'], ['src', 'dir']]);
    const dir = (await gh.rest.repos.getContent({ owner: 'acme', repo: 'ml', path: 'src', ref: 'main' })).data as { path: string }[];
    expect(dir.map((e) => e.path)).toEqual(['src/train.py']);
    await expect(gh.rest.repos.getContent({ owner: 'acme', repo: 'ml', path: 'nope.txt' })).rejects.toMatchObject({ status: 404 });
    await expect(gh.rest.repos.getContent({ owner: 'acme', repo: 'ml', path: 'src', ref: 'no-such-branch' })).rejects.toMatchObject({ status: 404 });
  });

  it('keeps the comments, reactions and check runs the app makes', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const gh = await probotFor(sim).auth(setup.installation.id);
    const pr = await sim.createPull({ owner: 'acme', repo: 'ml', head: 'main', title: 'Train' });
    const asked = await sim.comment({ owner: 'acme', repo: 'ml', number: pr.number, user: 'alice', permission: 'write', body: '/dstack run train' });
    expect((await gh.rest.reactions.createForIssueComment({ owner: 'acme', repo: 'ml', comment_id: asked.id, content: 'eyes' })).status).toBe(201);
    expect((await gh.rest.reactions.createForIssueComment({ owner: 'acme', repo: 'ml', comment_id: asked.id, content: 'eyes' })).status).toBe(200);
    const reply = await gh.rest.issues.createComment({ owner: 'acme', repo: 'ml', issue_number: pr.number, body: 'queued' });
    expect(reply.data.user?.login).toBe('dstack-sim[bot]');
    await gh.rest.issues.updateComment({ owner: 'acme', repo: 'ml', comment_id: reply.data.id, body: 'running' });
    // A user's comment is theirs: the app cannot edit it.
    await expect(gh.rest.issues.updateComment({ owner: 'acme', repo: 'ml', comment_id: asked.id, body: 'x' })).rejects.toMatchObject({ status: 403 });
    const comments = sim.comments({ owner: 'acme', repo: 'ml' });
    expect(comments.map((c) => [c.user?.login, c.body])).toEqual([['alice', '/dstack run train'], ['dstack-sim[bot]', 'running']]);
    expect(comments[0]!.reactions_list).toEqual([{ content: 'eyes', user: 'dstack-sim[bot]' }]);

    const run = await gh.rest.checks.create({ owner: 'acme', repo: 'ml', name: 'dstack/train', head_sha: pr.head_sha, status: 'queued', external_id: 'job-1', output: { title: 'submitted', summary: 'waiting' }, actions: [{ label: 'Stop', description: 'Stop the job', identifier: 'stop' }] });
    expect(run.data).toMatchObject({ status: 'queued', conclusion: null, external_id: 'job-1', pull_requests: [{ number: pr.number }] });
    await gh.rest.checks.update({ owner: 'acme', repo: 'ml', check_run_id: run.data.id, status: 'in_progress', output: { title: 'running', summary: 's', text: 'line 1' } });
    await gh.rest.checks.update({ owner: 'acme', repo: 'ml', check_run_id: run.data.id, conclusion: 'success', output: { title: 'done', summary: 's', text: 'line 1\nline 2' } });
    expect((await gh.rest.checks.get({ owner: 'acme', repo: 'ml', check_run_id: run.data.id })).data).toMatchObject({ status: 'completed', conclusion: 'success', output: { title: 'done', text: 'line 1\nline 2' } });
    const [made] = sim.checkRuns({ owner: 'acme', repo: 'ml' });
    expect(made!.updates).toHaveLength(3);
    await expect(gh.rest.checks.create({ owner: 'acme', repo: 'ml', name: 'x', head_sha: 'f'.repeat(40) })).rejects.toMatchObject({ status: 422 });
    await expect(gh.rest.checks.update({ owner: 'acme', repo: 'ml', check_run_id: run.data.id, output: { title: 't', summary: 's', text: 'é'.repeat(40_000) } })).rejects.toMatchObject({ status: 422 });
  });

  it('makes releases on real tags, takes uploads at upload_url and serves the bytes back', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const gh = await probotFor(sim).auth(setup.installation.id);
    const rel = await gh.rest.repos.createRelease({ owner: 'acme', repo: 'ml', tag_name: 'latest', name: 'slim-octopus-3', body: 'run' });
    expect((await gh.rest.git.getRef({ owner: 'acme', repo: 'ml', ref: 'tags/latest' })).data.object.sha).toBe(setup.commit);
    await expect(gh.rest.repos.createRelease({ owner: 'acme', repo: 'ml', tag_name: 'latest' })).rejects.toMatchObject({ status: 422 });
    const bytes = Buffer.from('model weights \x00\x01\x02');
    const asset = await gh.rest.repos.uploadReleaseAsset({ owner: 'acme', repo: 'ml', release_id: rel.data.id, name: 'train model.tar', data: bytes as unknown as string, url: rel.data.upload_url, headers: { 'content-type': 'application/x-tar' } });
    expect(asset.data).toMatchObject({ name: 'train.model.tar', size: bytes.length, state: 'uploaded' });
    const got = await gh.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', { owner: 'acme', repo: 'ml', asset_id: asset.data.id, headers: { accept: 'application/octet-stream' } });
    expect(Buffer.from(got.data as unknown as ArrayBuffer)).toEqual(bytes);
    expect((await gh.rest.repos.getReleaseByTag({ owner: 'acme', repo: 'ml', tag: 'latest' })).data.assets.map((a) => a.name)).toEqual(['train.model.tar']);
    expect((await gh.rest.repos.listReleaseAssets({ owner: 'acme', repo: 'ml', release_id: rel.data.id })).data).toHaveLength(1);
    await gh.rest.repos.updateRelease({ owner: 'acme', repo: 'ml', release_id: rel.data.id, tag_name: 'v2' });
    expect((await gh.rest.git.getRef({ owner: 'acme', repo: 'ml', ref: 'tags/v2' })).data.ref).toBe('refs/tags/v2');
    expect((await gh.rest.repos.deleteReleaseAsset({ owner: 'acme', repo: 'ml', asset_id: asset.data.id })).status).toBe(204);
    expect(sim.releases({ owner: 'acme', repo: 'ml' })).toMatchObject([{ tag_name: 'v2', assets: [] }]);
  });

  it('refuses an upload without a Content-Length, as GitHub does', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const { token } = sim.createToken(setup.installation.id);
    const gh = new Octokit({ baseUrl: sim.apiUrl, auth: token });
    const rel = await gh.rest.repos.createRelease({ owner: 'acme', repo: 'ml', tag_name: 'v1' });
    const url = rel.data.upload_url.replace('{?name,label}', '?name=a.bin');
    const chunked = new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array([1, 2, 3])), c.close()) });
    const res = await fetch(url, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/octet-stream' }, body: chunked, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ message: 'Bad Content-Length' });
  });

  it('opens a pull request from a fork whose head commit the base repository serves as refs/pull/N/head', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const fork = bareRepo({ 'evil.sh': 'echo hi\n' });
    await sim.createRepo({ owner: 'mallory', name: 'ml', path: fork.work, forkOf: 'acme/ml' });
    const pr = await sim.createPull({ owner: 'acme', repo: 'ml', head: 'main', title: 'Fork', forkOwner: 'mallory' });
    expect(pr.head_sha).toBe(fork.commit);
    const { token } = sim.createToken(setup.installation.id, { repositories: ['ml'] });
    const gh = new Octokit({ baseUrl: sim.apiUrl, auth: token });
    const pull = (await gh.rest.pulls.get({ owner: 'acme', repo: 'ml', pull_number: pr.number })).data;
    expect(pull.head).toMatchObject({ sha: fork.commit, ref: 'main', repo: { full_name: 'mallory/ml', fork: true } });
    expect(pull.base.repo.full_name).toBe('acme/ml');
    const dir = tempDir();
    await run('git', ['init', '--quiet', dir]);
    await run('git', ['-C', dir, 'fetch', '--quiet', setup.repo.clone_url.replace('http://', `http://x-access-token:${token}@`), `refs/pull/${pr.number}/head`]);
    expect((await run('git', ['-C', dir, 'rev-parse', 'FETCH_HEAD'])).stdout.trim()).toBe(fork.commit);

    // A new commit pushed to the fork's branch moves the pull request's head.
    const env = { ...process.env, GIT_AUTHOR_NAME: 'm', GIT_AUTHOR_EMAIL: 'm@x', GIT_COMMITTER_NAME: 'm', GIT_COMMITTER_EMAIL: 'm@x' };
    await run('git', ['-C', fork.work, 'commit', '--quiet', '--allow-empty', '-m', 'more'], { env });
    const moved = (await run('git', ['-C', fork.work, 'rev-parse', 'HEAD'])).stdout.trim();
    await sim.push({ owner: 'mallory', repo: 'ml', path: fork.work, user: 'mallory' });
    expect((await gh.rest.pulls.get({ owner: 'acme', repo: 'ml', pull_number: pr.number })).data.head.sha).toBe(moved);
  });

  it("lists a branch's pushes newest first with the time each was pushed, and lets any token read a public fork's", async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const fork = bareRepo({ 'a.txt': 'a\n' });
    await sim.createRepo({ owner: 'mallory', name: 'ml', path: fork.work, forkOf: 'acme/ml', private: false });
    const env = { ...process.env, GIT_AUTHOR_NAME: 'm', GIT_AUTHOR_EMAIL: 'm@x', GIT_COMMITTER_NAME: 'm', GIT_COMMITTER_EMAIL: 'm@x', GIT_COMMITTER_DATE: '2001-01-01T00:00:00Z' };
    await run('git', ['-C', fork.work, 'commit', '--quiet', '--allow-empty', '-m', 'old-looking'], { env });
    const pushed = (await run('git', ['-C', fork.work, 'rev-parse', 'HEAD'])).stdout.trim();
    const before = Date.now();
    await sim.push({ owner: 'mallory', repo: 'ml', path: fork.work, user: 'mallory' });
    // A token of acme's installation, which does not cover mallory/ml: it reads it because it is public.
    const { token } = sim.createToken(setup.installation.id);
    const gh = new Octokit({ baseUrl: sim.apiUrl, auth: token });
    const { data } = await gh.rest.repos.listActivities({ owner: 'mallory', repo: 'ml', ref: 'refs/heads/main' });
    expect(data.map((a) => [a.activity_type, a.before, a.after, a.actor?.login])).toEqual([
      ['push', fork.commit, pushed, 'mallory'],
      ['branch_creation', '0000000000000000000000000000000000000000', fork.commit, 'mallory'],
    ]);
    // The time of the push, not the commit's date.
    expect(Date.parse(data[0]!.timestamp)).toBeGreaterThanOrEqual(before);
    await expect(gh.rest.repos.listActivities({ owner: 'acme', repo: 'ml', ref: 'main', activity_type: 'force_push' }).then((r) => r.data)).resolves.toEqual([]);
  });

  it('moves a tag with git refs only forward unless forced', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const gh = await probotFor(sim).auth(setup.installation.id);
    expect((await gh.rest.git.createRef({ owner: 'acme', repo: 'ml', ref: 'refs/tags/prepare', sha: setup.commit })).status).toBe(201);
    await expect(gh.rest.git.createRef({ owner: 'acme', repo: 'ml', ref: 'refs/tags/prepare', sha: setup.commit })).rejects.toMatchObject({ status: 422, message: expect.stringContaining('Reference already exists') });
    expect((await gh.rest.git.updateRef({ owner: 'acme', repo: 'ml', ref: 'tags/prepare', sha: setup.commit, force: true })).data.object.sha).toBe(setup.commit);
    await expect(gh.rest.git.getRef({ owner: 'acme', repo: 'ml', ref: 'tags/none' })).rejects.toMatchObject({ status: 404 });
  });
});
