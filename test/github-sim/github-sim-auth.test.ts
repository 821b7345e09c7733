import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { SimSchemaError } from './sim-errors.js';
import { simWithRepo } from './sim-fixtures.js';
import { startGithubSim, type GithubSim } from './start-github-sim.js';

const run = promisify(execFile);
let sim: GithubSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** An RS256 JWT with these claims, signed with `keyPem`. */
function jwt(claims: Record<string, unknown>, keyPem: string): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}`;
  return `${data}.${crypto.sign('RSA-SHA256', Buffer.from(data), keyPem).toString('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const client = (s: GithubSim, auth?: string) => new Octokit({ baseUrl: s.apiUrl, auth, log: quiet, request: { retries: 0 } });

describe('github-sim checks credentials as GitHub does', () => {
  it('takes a good app JWT and refuses a bad, foreign, expired or too long one with 401', async () => {
    sim = await startGithubSim();
    const key = sim.privateKey;
    expect((await client(sim, jwt({ iss: sim.appId, iat: now() - 30, exp: now() + 540 }, key)).rest.apps.getAuthenticated()).status).toBe(200);
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const refused = async (token: string, message: string) =>
      expect(client(sim!, token).rest.apps.getAuthenticated()).rejects.toMatchObject({ status: 401, response: { data: { message } } });
    await refused('not-a-jwt', 'A JSON web token could not be decoded');
    await refused(jwt({ iss: sim.appId, iat: now() - 30, exp: now() + 540 }, other), 'A JSON web token could not be decoded');
    await refused(jwt({ iss: sim.appId + 1, iat: now() - 30, exp: now() + 540 }, key), "'Issuer' claim ('iss') must be an Integer");
    await refused(jwt({ iss: sim.appId, iat: now() - 700, exp: now() - 100 }, key), "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
    await refused(jwt({ iss: sim.appId, iat: now() + 300, exp: now() + 600 }, key), "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    await refused(jwt({ iss: sim.appId, iat: now() - 30, exp: now() + 3600 }, key), "'Expiration time' claim ('exp') is too far in the future");
  });

  it('scopes installation tokens to their repositories and permissions, and expires them', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const { work } = setup;
    await sim.createRepo({ owner: 'acme', name: 'other', path: work });
    await sim.createRepo({ owner: 'globex', name: 'secret', path: work });
    const scoped = sim.createToken(setup.installation.id, { repositories: ['other'], permissions: { contents: 'read' } });
    const gh = client(sim, scoped.token);
    expect((await gh.rest.repos.get({ owner: 'acme', repo: 'other' })).status).toBe(200);
    await expect(gh.rest.repos.get({ owner: 'acme', repo: 'ml' })).rejects.toMatchObject({ status: 404 });
    await expect(gh.rest.repos.get({ owner: 'globex', repo: 'secret' })).rejects.toMatchObject({ status: 404 });
    const denied = await gh.rest.checks.create({ owner: 'acme', repo: 'other', name: 'x', head_sha: setup.commit }).catch((e) => e);
    expect(denied).toMatchObject({ status: 403, response: { data: { message: 'Resource not accessible by integration' }, headers: { 'x-accepted-github-permissions': 'checks=write' } } });
    expect(() => sim!.createToken(setup.installation.id, { repositories: ['secret'] })).toThrow(/not accessible to the parent installation/);
    expect(() => sim!.createToken(setup.installation.id, { permissions: { administration: 'write' } })).toThrow(/not granted/);
    sim.expireToken(scoped.token);
    await expect(gh.rest.repos.get({ owner: 'acme', repo: 'other' })).rejects.toMatchObject({ status: 401, response: { data: { message: 'Bad credentials' } } });
    await expect(client(sim).rest.repos.get({ owner: 'acme', repo: 'ml' })).rejects.toMatchObject({ status: 404 });
    await expect(client(sim, 'ghs_madeup').rest.repos.get({ owner: 'acme', repo: 'ml' })).rejects.toMatchObject({ status: 401 });
  });

  it('serves git over smart HTTP to an installation token only', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const { token } = sim.createToken(setup.installation.id, { repositories: ['ml'], permissions: { contents: 'read' } });
    const withToken = setup.repo.clone_url.replace('http://', `http://x-access-token:${token}@`);
    const dir = path.join(tempDir(), 'clone');
    const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
    await run('git', ['clone', '--quiet', withToken, dir], { env });
    expect(fs.readFileSync(path.join(dir, 'src/train.py'), 'utf8')).toBe('print(1)\n');
    await expect(run('git', ['clone', '--quiet', setup.repo.clone_url, path.join(tempDir(), 'anon')], { env })).rejects.toThrow(/Authentication failed|could not read Username/);
    await expect(run('git', ['clone', '--quiet', setup.repo.clone_url.replace('http://', 'http://x-access-token:ghs_wrong@'), path.join(tempDir(), 'bad')], { env })).rejects.toThrow(/Authentication failed|401/);
    // A read-only token cannot push.
    await expect(run('git', ['-C', dir, 'push', '--quiet', 'origin', 'HEAD:refs/heads/new'], { env })).rejects.toThrow(/403|denied/i);
  });
});

describe('github-sim validates against GitHub OpenAPI description', () => {
  it('answers 501 naming the route for what it does not implement', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const gh = client(sim, sim.createToken(setup.installation.id).token);
    const res = await gh.request('GET /repos/{owner}/{repo}/branches', { owner: 'acme', repo: 'ml' }).catch((e) => e);
    expect(res).toMatchObject({ status: 501, response: { data: { message: 'github-sim does not implement GET /api/v3/repos/acme/ml/branches' } } });
    expect(sim.requests.counts()['GET /repos/acme/ml/branches']).toBe(1);
  });

  it('refuses a request body that breaks the schema with 422, and bad JSON with 400', async () => {
    const setup = await simWithRepo();
    sim = setup.sim;
    const { token } = sim.createToken(setup.installation.id);
    const gh = client(sim, token);
    const bad = await gh.request('POST /repos/{owner}/{repo}/check-runs', { owner: 'acme', repo: 'ml', name: 'x', head_sha: setup.commit, status: 'bogus' as 'queued' }).catch((e) => e);
    expect(bad).toMatchObject({ status: 422 });
    expect(bad.response.data.message).toContain('/status must be equal to one of the allowed values');
    const res = await fetch(`${sim.apiUrl}/repos/acme/ml/check-runs`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: '{"name":' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ message: 'Problems parsing JSON' });
    expect(sim.checkRuns({ owner: 'acme', repo: 'ml' })).toEqual([]);
  });

  it('answers 500 for a response that breaks the schema, and close() throws until the test takes the problem', async () => {
    const setup = await simWithRepo();
    const s = setup.sim;
    s.breakResponses('repos/get', (body) => ({ ...body, id: 'not a number', owner: undefined }));
    const err = await client(s, s.createToken(setup.installation.id).token).rest.repos.get({ owner: 'acme', repo: 'ml' }).catch((e) => e);
    expect(err.status).toBe(500);
    expect(err.response.data.message).toMatch(/the 200 response of repos\/get breaks GitHub's schema: .*\/id must be integer/);
    await expect(s.close()).rejects.toBeInstanceOf(SimSchemaError);

    const again = await simWithRepo();
    sim = again.sim;
    sim.breakResponses('repos/get', (body) => ({ ...body, private: 'yes' }));
    await expect(client(sim, sim.createToken(again.installation.id).token).rest.repos.get({ owner: 'acme', repo: 'ml' })).rejects.toMatchObject({ status: 500 });
    expect(sim.takeSchemaProblems()).toEqual([expect.stringContaining('/private must be boolean')]);
  });
});
