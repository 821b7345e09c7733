import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type DstackServer } from '../../app/server/server.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { tempDir } from '../helpers/cli.js';
import { headOnly } from '../helpers/raw-http.js';
import { workflow } from '../helpers/service.js';

const servers: DstackServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve() {
  const server = createServer({ dataDir: tempDir(), log: () => {} });
  servers.push(server);
  const { port } = (await server.listen(0, '127.0.0.1')) as AddressInfo;
  const token = server.tokens.create('acme', 'user').token;
  const url = `http://127.0.0.1:${port}`;
  const call = async (method: string, route: string, body?: string) => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body,
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const submit = async (plan: ResolvedWorkflow[]) => {
    const { name } = (await call('POST', '/api/run-names')).body as { name: string };
    const body = { name, repo: 'https://example.invalid/acme/repo.git', workflow: plan.at(-1)!.name, args: '', plan, source: { repoUrl: 'https://example.invalid/acme/repo.git', commit: 'a'.repeat(40), patch: null } };
    return call('POST', '/api/runs', JSON.stringify(body));
  };
  return { server, port, token, call, submit };
}

describe('the user API', () => {
  it('refuses a hand-made plan that breaks a rule of the workflow loader with its message and code, and offers nothing of it', async () => {
    const { server, submit } = await serve();
    const bash = (extra: Record<string, unknown> = {}) => ({ name: 'train', provider: 'bash', commands: ['true'], ...extra });
    const cases: [string, ResolvedWorkflow[], { error: string; code: string }][] = [
      ['artifacts outside the spec', [workflow('train', { artifacts: ['/etc'] })], { error: 'plan.0: \'artifacts\' is ["/etc"], but its spec makes it []', code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['an absolute artifact', [workflow('train', { spec: bash({ artifacts: ['/etc'] }) as never, artifacts: ['/etc'] })], { error: "plan.0.spec:8:5: artifact path '/etc' escapes the working directory; use a path inside it, such as 'output'", code: 'DSTACK_ERR_PATH_ESCAPES' }],
      ['a working folder outside the spec', [workflow('train', { workingDir: '/etc' })], { error: 'plan.0: \'workingDir\' is "/etc", but its spec makes it "."', code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['an absolute working folder', [workflow('train', { spec: bash({ working_dir: '/etc' }) as never, workingDir: '/etc' })], { error: "plan.0.spec:7:18: working_dir '/etc' escapes the working directory; use a path inside it, such as 'output'", code: 'DSTACK_ERR_PATH_ESCAPES' }],
      ['a cache up a folder', [workflow('train', { spec: bash({ cache: ['../../.ssh'] }) as never, cache: ['../../.ssh'] })], { error: "plan.0.spec:8:5: cache path '../../.ssh' escapes the working directory; use a path inside it, such as 'output'", code: 'DSTACK_ERR_PATH_ESCAPES' }],
      ['a cache outside the spec', [workflow('train', { cache: ['~/../../root'] })], { error: 'plan.0: \'cache\' is ["~/../../root"], but its spec makes it []', code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['an unknown provider', [workflow('train', { provider: 'evil' as never, spec: bash({ provider: 'evil' }) as never })], { error: "plan.0.spec:3:15: unknown provider 'evil' in workflow 'train'; use one of: bash, python, docker, curl", code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['a key no provider has', [workflow('train', { spec: bash({ privileged: true }) as never })], { error: "plan.0.spec:7:3: unknown key 'privileged' in workflow 'train'; valid keys: name, help, depends-on, on, provider, commands, python, env, ports, environment, working_dir, artifacts, cache, resources", code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['a custom provider left unapplied', [workflow('train', { spec: bash({ provider: { repo: 'https://example.invalid/p.git', name: 'p' } }) as never })], { error: "plan.0.spec:3:15: a resolved workflow's provider is a built-in one: a custom provider is applied before the run is submitted", code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['a name not its spec\'s', [workflow('train', { spec: bash({ name: 'other' }) as never })], { error: 'plan.0: \'name\' is "train", but its spec makes it "other"', code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
      ['a dependency on a workflow not in the plan', [workflow('train', { spec: bash({ 'depends-on': ['ghost'] }) as never, dependsOn: [{ workflow: 'ghost' }] })], { error: "invalid run: 'train' depends on 'ghost', which is not before it in the plan", code: 'DSTACK_ERR_USAGE' }],
      ['a dependency its spec does not name', [workflow('prep'), workflow('train', { dependsOn: [{ workflow: 'prep' }] })], { error: 'plan.1: \'dependsOn\' is [{"workflow":"prep"}], but its spec makes it []', code: 'DSTACK_ERR_WORKFLOW_INVALID' }],
    ];
    for (const [what, plan, answer] of cases) expect(await submit(plan), what).toEqual({ status: 400, body: answer });
    expect(server.state.service.listRuns({ owner: 'acme', live: false, limit: 10 })).toEqual([]);
    // What the loader makes is taken as it is.
    const good = workflow('train', { spec: bash({ working_dir: 'src', artifacts: ['out'], cache: ['~/.cache/pip', { path: 'data' }] }) as never, workingDir: 'src', artifacts: ['src/out'], cache: ['~/.cache/pip', 'src/data'] });
    expect(await submit([good])).toMatchObject({ status: 201 });
  });

  it('answers a declared body over the limit with 413 at once, from its header, and closes the connection', async () => {
    const { port, token } = await serve();
    const cases: [string, string][] = [
      ['/api/patches', `{"error":"the patch of 2000000000 bytes is over the ${1 << 30}-byte limit; commit and push large files instead","code":"DSTACK_ERR_USAGE"}`],
      ['/api/runs', `{"error":"the body of 2000000000 bytes is over the ${16 << 20}-byte limit; send less","code":"DSTACK_ERR_USAGE"}`],
      ['/api/runs/slim-octopus-3/stop', `{"error":"the body of 2000000000 bytes is over the ${16 << 20}-byte limit; send less","code":"DSTACK_ERR_USAGE"}`],
    ];
    for (const [route, body] of cases) {
      const started = Date.now();
      const answer = await headOnly(port, `POST ${route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n`);
      expect(answer, route).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
      expect(answer, route).toMatch(/\r\nConnection: close\r\n/i);
      expect(answer.slice(answer.indexOf('\r\n\r\n') + 4), route).toBe(body);
      expect(Date.now() - started, route).toBeLessThan(2000);
    }
  });

  it('refuses bodies and query values of the wrong type with 400, never coercing them', async () => {
    const { call, submit } = await serve();
    const submitted = await submit([workflow('train')]);
    expect(submitted.status).toBe(201);
    const run = (submitted.body as { run: { name: string } }).run.name;
    const cases: [string, string, string | undefined, string][] = [
      ['POST', `/api/runs/${run}/tag`, '{"tag":["a"]}', "invalid tag at 'tag': Invalid input: expected string, received array"],
      ['POST', `/api/runs/${run}/tag`, '{"tag":5}', "invalid tag at 'tag': Invalid input: expected string, received number"],
      ['POST', `/api/runs/${run}/tag`, '["a"]', 'invalid tag: Invalid input: expected object, received array'],
      ['POST', `/api/runs/${run}/stop`, '[]', 'invalid stop: Invalid input: expected object, received array'],
      ['POST', `/api/runs/${run}/stop`, '{"abort":"yes"}', "invalid stop at 'abort': Invalid input: expected boolean, received string"],
      ['POST', `/api/runs/${run}/stop`, '{"abort":true,"now":1}', 'invalid stop: Unrecognized key: "now"'],
      ['GET', '/api/runs?limit=1e2', undefined, "invalid query at 'limit': a whole number"],
      ['GET', '/api/runs?limit=5&limit=6', undefined, "invalid query at 'limit': Invalid input: expected string, received array"],
      ['GET', `/api/runs/${run}/end?within=0x10`, undefined, "invalid query at 'within': a whole number"],
      ['DELETE', '/api/caches?repo=a&repo=b&workflow=w', undefined, 'repo and workflow are required, once each: DELETE /api/caches?repo=URL&workflow=NAME'],
    ];
    for (const [method, route, body, error] of cases) {
      expect(await call(method, route, body), `${method} ${route} ${body}`).toEqual({ status: 400, body: { error, code: 'DSTACK_ERR_USAGE' } });
    }
    expect((await call('GET', `/api/runs/${run}`)).body).toMatchObject({ status: 'submitted' });
    expect(await call('POST', `/api/runs/${run}/stop`, '{"abort":true}')).toMatchObject({ status: 200 });
  });
});
