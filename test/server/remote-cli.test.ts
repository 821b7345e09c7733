import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, runNameOf, startCli, tempDir, waitFor, writeFiles, type RunJson } from '../helpers/cli.js';
import { app, createToken, startAgent, startServer, type ServerProc } from '../helpers/server.js';

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } }).trim();
}

/** A clone with `files` committed and pushed to a bare remote, as a team's repository would be. */
function pushedRepo(files: Record<string, string>): { cwd: string; remote: string; commit: string } {
  const remote = tempDir('dstack-bare-');
  const cwd = tempDir('dstack-repo-');
  execFileSync('git', ['init', '--bare', '--quiet', '-b', 'main', remote]);
  git(cwd, 'init', '--quiet', '-b', 'main');
  writeFiles(cwd, files);
  git(cwd, 'add', '-A');
  git(cwd, 'commit', '--quiet', '-m', 'first');
  git(cwd, 'remote', 'add', 'origin', remote);
  git(cwd, 'push', '--quiet', '-u', 'origin', 'main');
  return { cwd, remote, commit: git(cwd, 'rev-parse', 'HEAD') };
}

const WORKFLOWS = {
  '.dstack/workflows.yaml': [
    'workflows:',
    '  - name: hello',
    '    provider: bash',
    '    commands:',
    '      - cat data.txt',
    `      - 'echo "args: \${{ run.args }}"'`,
    `      - 'echo "secret: \${{ secrets.API_KEY }}"'`,
    '  - name: slow',
    '    provider: bash',
    '    commands:',
    '      - echo started',
    '      - sleep 600',
    '  - name: stubborn',
    '    provider: bash',
    '    commands:',
    `      - 'trap "" INT TERM; echo started; while true; do sleep 1; done'`,
    '  - name: train',
    '    provider: bash',
    '    depends-on: [prep:latest]',
    '    commands: [echo train]',
    '',
  ].join('\n'),
  '.gitignore': 'ignored.txt\n',
  'data.txt': 'committed\n',
};

/** A resolved workflow as `dstack run` sends it in a plan. */
const RESOLVED = { name: 'a', provider: 'bash', spec: { name: 'a', provider: 'bash', commands: ['true'] }, dependsOn: [], workingDir: '.', artifacts: [], cache: [], ports: [], env: {}, resources: { gpu: { count: 0 }, interruptible: false } };

/** A server, with a user token of each owner saved in a DSTACK_HOME of their own. */
async function serverWithUsers(): Promise<{ dataDir: string; server: ServerProc; acme: string; other: string; tokens: Record<string, { id: string; token: string }> }> {
  const dataDir = tempDir();
  const tokens = { acme: await createToken(dataDir, 'acme', 'user'), other: await createToken(dataDir, 'other', 'user') };
  const server = await startServer(dataDir);
  const homes: Record<string, string> = {};
  for (const [owner, t] of Object.entries(tokens)) {
    homes[owner] = tempDir('dstack-home-');
    const r = await cli(['config', '--url', server.url, '--token', t.token], { cwd: homes[owner], home: homes[owner] });
    expect(r.stderr).toBe('');
  }
  return { dataDir, server, acme: homes.acme!, other: homes.other!, tokens };
}

/** A server with a user (acme) and one agent of acme's connected, and a pushed repository of WORKFLOWS. */
async function serverWithAgent(agentEnv: NodeJS.ProcessEnv = {}) {
  const users = await serverWithUsers();
  const agentToken = await createToken(users.dataDir, 'acme', 'agent');
  await startAgent({ url: users.server.url, token: agentToken.token, name: 'box', workDir: tempDir(), env: agentEnv });
  return { ...users, repo: pushedRepo(WORKFLOWS) };
}

async function psJson(cwd: string, home: string): Promise<RunJson[]> {
  const r = await cli(['ps', '-a', '--json'], { cwd, home });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as RunJson[];
}

/** The user API, as a script (or a CLI of another version) would call it. */
async function api(url: string, token: string, method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('dstack config for a server', () => {
  it('checks the token with the server before saving it (0600), prints the mode without the token, and --local goes back', async () => {
    const dataDir = tempDir();
    const user = await createToken(dataDir, 'acme', 'user');
    const agent = await createToken(dataDir, 'acme', 'agent');
    const server = await startServer(dataDir);
    const home = tempDir();
    const file = path.join(home, 'config.json');

    const wrong = await cli(['config', '--url', server.url, '--token', agent.token], { cwd: home, home });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(
      `dstack: error: the server at ${server.url} refused the token (401); create a user token with 'dstack-app token create --owner NAME --user' and save it with 'dstack config --url ${server.url} --token TOKEN'\n`,
    );
    expect(fs.existsSync(file)).toBe(false);

    const saved = await cli(['config', '--url', `${server.url}/`, '--token', user.token], { cwd: home, home });
    expect(saved.stdout).toBe(`mode: remote\nserver: ${server.url}\nowner: acme\nisolation: host\nimage: python:3.11-slim\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).server).toEqual({ url: server.url, token: user.token });

    const shown = await cli(['config', '--json'], { cwd: home, home });
    expect(JSON.parse(shown.stdout)).toEqual({ isolation: 'host', image: 'python:3.11-slim', mode: 'remote', server: { url: server.url, owner: 'acme' } });
    expect(shown.stdout + (await cli(['config'], { cwd: home, home })).stdout).not.toContain(user.token);

    const local = await cli(['config', '--local'], { cwd: home, home });
    expect(local.stdout).toBe('mode: local\nisolation: host\nimage: python:3.11-slim\n');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({});
    // Local mode again: ps reads this machine's (empty) state.
    expect((await cli(['ps'], { cwd: home, home })).stdout).toBe('RUN  WORKFLOW  SUBMITTED  STATUS  TAG\n');
  });

  it('says in one line that a server cannot be reached, and refuses half a setting or a URL that is not http', async () => {
    const dataDir = tempDir();
    const user = await createToken(dataDir, 'acme', 'user');
    const server = await startServer(dataDir);
    const home = tempDir();
    await cli(['config', '--url', server.url, '--token', user.token], { cwd: home, home });
    await server.stop();
    const ps = await cli(['ps'], { cwd: home, home });
    expect(ps.code).toBe(1);
    expect(ps.stderr).toBe(`dstack: error: cannot reach the server at ${server.url}: ECONNREFUSED; check \`dstack config\`\n`);
    expect((await cli(['config'], { cwd: home, home })).stdout).toBe(`mode: remote\nserver: ${server.url}\nowner: (the server cannot be reached now)\nisolation: host\nimage: python:3.11-slim\n`);
    expect((await cli(['config', '--url', server.url], { cwd: home, home })).stderr).toBe('dstack: error: give --url and --token together: dstack config --url URL --token TOKEN\n');
    expect((await cli(['config', '--url', 'ftp://x', '--token', 't'], { cwd: home, home })).stderr).toBe(
      "dstack: error: invalid --url 'ftp://x': the server's http:// or https:// URL, e.g. https://dstack.example.com\n",
    );
  });

  it('says in one line what came back from something that is not a dstack server: a page that is not JSON, an answer cut off', async () => {
    // It takes the token; then a proxy's page on one path, an answer that promises more than it sends on another.
    const other = http.createServer((req, res) => {
      if (req.url === '/api/user') res.writeHead(200, { 'content-type': 'application/json' }).end('{"owner":"acme"}');
      else if (req.url?.startsWith('/api/runs')) res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Sign in to continue</html>');
      else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"own');
        setTimeout(() => res.destroy(), 50);
      }
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const home = tempDir();
      expect((await cli(['config', '--url', url, '--token', 'dstack_x'], { cwd: home, home })).code).toBe(0);
      const ps = await cli(['ps'], { cwd: home, home });
      expect(ps.code).toBe(1);
      expect(ps.stderr).toBe(`dstack: error: the server at ${url} answered 200 with something that is not JSON (<html>Sign in to continue</html>); check \`dstack config\`\n`);
      const tags = await cli(['tags'], { cwd: home, home });
      expect(tags.code).toBe(1);
      expect(tags.stderr).toBe(`dstack: error: the server at ${url} cut its answer off (ECONNRESET); try again, or check \`dstack config\`\n`);
    } finally {
      other.close();
    }
  });
});

describe('dstack against a server', () => {
  it("sends the run's code as the newest pushed commit and one patch that applies to a clone of it, leaving the user's index and files as they were", async () => {
    const { dataDir, server, acme, tokens } = await serverWithUsers();
    const repo = pushedRepo(WORKFLOWS);
    // Work not pushed: a change to a tracked file, a new file, an ignored one, a local commit.
    fs.writeFileSync(path.join(repo.cwd, 'data.txt'), 'changed here\n');
    fs.writeFileSync(path.join(repo.cwd, 'new.bin'), Buffer.from([0, 1, 2, 255]));
    fs.writeFileSync(path.join(repo.cwd, 'ignored.txt'), 'not sent\n');
    writeFiles(repo.cwd, { 'committed-locally.txt': 'local commit\n' });
    git(repo.cwd, 'add', 'committed-locally.txt');
    git(repo.cwd, 'commit', '--quiet', '-m', 'local');
    await cli(['secrets', 'add', 'API_KEY'], { cwd: repo.cwd, home: acme, input: 's3cret' });
    await cli(['secrets', 'add', 'UNUSED'], { cwd: repo.cwd, home: acme, input: 'never sent' });

    const r = await cli(['run', 'hello', '-d', '--label', 'gpu', 'a b'], { cwd: repo.cwd, home: acme });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const name = runNameOf(r.stdout);
    expect(r.stdout).toMatch(new RegExp(`^RUN +WORKFLOW +SUBMITTED +STATUS +TAG\\n${name} +hello +now +Submitted\\n\\nDetached. Follow with: dstack logs ${name} -f\\n$`));

    const [run] = await psJson(repo.cwd, acme);
    expect(run).toMatchObject({ name, workflow: 'hello', status: 'submitted', args: "'a b'" });
    // The label reached the job: it waits for an agent that has it.
    expect(run!.jobs[0]!.reason).toBe('waiting: needs labels gpu (an agent of acme); no agent of acme is connected');

    // What the server keeps: the pushed commit, and a patch of the rest that applies to it.
    const stored = await api(server.url, tokens.acme!.token, 'GET', `/api/runs/${name}`);
    expect(stored.json.run).toMatchObject({ repo: repo.remote, source: { repoUrl: repo.remote, commit: repo.commit, patch: true } });
    expect(JSON.stringify(stored.json)).not.toContain('s3cret');
    const patches = path.join(dataDir, 'archives/patches');
    const [patch] = fs.readdirSync(patches, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const clone = tempDir('dstack-clone-');
    git(clone, 'clone', '--quiet', repo.remote, '.');
    git(clone, 'apply', '--binary', path.join(patch!.parentPath, patch!.name));
    expect(fs.readFileSync(path.join(clone, 'data.txt'), 'utf8')).toBe('changed here\n');
    expect(fs.readFileSync(path.join(clone, 'new.bin'))).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(fs.readFileSync(path.join(clone, 'committed-locally.txt'), 'utf8')).toBe('local commit\n');
    expect(fs.existsSync(path.join(clone, 'ignored.txt'))).toBe(false);
    // The user's own index and work tree are as they were.
    expect(git(repo.cwd, 'status', '--porcelain')).toBe('M data.txt\n?? new.bin');
  });

  it("shows an owner its own runs only: another owner's run is 'unknown run' to ps, logs, stop, tag and artifacts", async () => {
    const { server, acme, other, tokens } = await serverWithUsers();
    const repo = pushedRepo(WORKFLOWS);
    await cli(['secrets', 'add', 'API_KEY'], { cwd: repo.cwd, home: acme, input: 'k' });
    const name = runNameOf((await cli(['run', 'slow', '-d'], { cwd: repo.cwd, home: acme })).stdout);

    expect((await cli(['ps'], { cwd: repo.cwd, home: other })).stdout).toBe('RUN  WORKFLOW  SUBMITTED  STATUS  TAG\n');
    expect(await psJson(repo.cwd, other)).toEqual([]);
    const unknown = `dstack: error: unknown run '${name}'; 'dstack ps -a' lists runs\n`;
    for (const args of [['logs', name], ['stop', name], ['tag', name, 'latest'], ['artifacts', 'list', name], ['artifacts', 'download', name]]) {
      const r = await cli(args, { cwd: repo.cwd, home: other });
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 1, unknown]);
    }
    expect((await api(server.url, tokens.other!.token, 'POST', `/api/runs/${name}/stop`, { abort: true })).status).toBe(404);

    // Its owner sees it, stops it (it never started: no agent), tags it and lists its artifacts.
    expect((await cli(['ps'], { cwd: repo.cwd, home: acme })).stdout).toMatch(new RegExp(`^${name} +slow +now +Submitted`, 'm'));
    const stop = await cli(['stop', name], { cwd: repo.cwd, home: acme });
    expect(stop.stdout).toBe(`Stopping ${name}…\n${name}: stopped\n`);
    expect((await cli(['stop', name], { cwd: repo.cwd, home: acme })).stdout).toBe(`${name} has already ended: stopped\n`);
    expect((await cli(['tag', name, 'latest'], { cwd: repo.cwd, home: acme })).stdout).toBe(`Tagged ${name} as latest\n`);
    const tags = JSON.parse((await cli(['tags', '--json'], { cwd: repo.cwd, home: acme })).stdout);
    expect(tags).toEqual([{ tag: 'latest', run: name, workflow: 'slow', created_at: expect.any(String) }]);
    expect(JSON.parse((await cli(['tags', '--json'], { cwd: repo.cwd, home: other })).stdout)).toEqual([]);
    expect((await cli(['artifacts', 'list', ':latest'], { cwd: repo.cwd, home: acme })).stdout).toBe('WORKFLOW  PATH  FILES  SIZE\n');
    expect((await cli(['artifacts', 'download', ':latest', '-o', tempDir()], { cwd: repo.cwd, home: acme })).stdout).toBe(`${name} has no artifacts\n`);
    const otherTag = await cli(['artifacts', 'list', ':latest'], { cwd: repo.cwd, home: other });
    expect(otherTag.stderr).toBe("dstack: error: unknown tag 'latest'; 'dstack tags' lists tags, 'dstack tag RUN latest' makes one\n");
    expect((await cli(['untag', 'latest'], { cwd: repo.cwd, home: other })).code).toBe(1);
    expect((await cli(['untag', 'latest'], { cwd: repo.cwd, home: acme })).stdout).toBe('Deleted tag latest\n');
    expect((await cli(['logs', name], { cwd: repo.cwd, home: acme })).stdout).toBe('');
    expect((await cli(['prune', 'cache', 'slow'], { cwd: repo.cwd, home: acme })).stdout).toBe('No cache for slow\n');
  });

  it('answers a revoked token with DSTACK_ERR_AUTH in one line, whatever the command', async () => {
    const { dataDir, server, acme, tokens } = await serverWithUsers();
    await app(['token', 'revoke', tokens.acme!.id], { DSTACK_DATA_DIR: dataDir });
    const auth = `dstack: error: the server at ${server.url} refused the token (401); create a user token with 'dstack-app token create --owner NAME --user' and save it with 'dstack config --url ${server.url} --token TOKEN'\n`;
    for (const args of [['ps'], ['logs', 'slim-octopus-3', '-f'], ['tags'], ['stop', 'slim-octopus-3']]) {
      const r = await cli(args, { cwd: acme, home: acme });
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 1, auth]);
    }
  });

  it('refuses a run it cannot take, saying why: no git remote, an unknown tag, a bad label, a malformed plan', async () => {
    const { server, acme, tokens } = await serverWithUsers();
    const loose = tempDir('dstack-repo-');
    writeFiles(loose, WORKFLOWS);
    const noGit = await cli(['run', 'slow'], { cwd: loose, home: acme });
    expect(noGit.stderr).toMatch(/^dstack: error: .* is not in a git repository; runs on a server need one with a remote \(git init, git remote add origin URL, git push\)\n$/);

    const repo = pushedRepo(WORKFLOWS);
    const tag = await cli(['run', 'train'], { cwd: repo.cwd, home: acme });
    expect(tag.stderr).toBe("dstack: error: depends-on 'prep:latest': unknown tag 'latest'; 'dstack tags' lists tags, 'dstack tag RUN latest' makes one\n");
    const label = await cli(['run', 'slow', '--label', 'a b'], { cwd: repo.cwd, home: acme });
    expect(label.stderr).toBe("dstack: error: invalid --label 'a b': letters, digits, `_`, `.` and `-`\n");
    expect((await psJson(repo.cwd, acme)).length).toBe(0);

    const token = tokens.acme!.token;
    const name = ((await api(server.url, token, 'POST', '/api/run-names')).json as { name: string }).name;
    const wf = RESOLVED;
    const body = { name, repo: 'r', workflow: 'a', args: '', plan: [wf], source: { repoUrl: 'r', commit: 'a'.repeat(40), patch: null } };
    const refused = async (change: Record<string, unknown>) => (await api(server.url, token, 'POST', '/api/runs', { ...body, ...change })).json;
    expect(await refused({ plan: [] })).toEqual({ error: "invalid run at 'plan': Too small: expected array to have >=1 items", code: 'DSTACK_ERR_USAGE' });
    expect(await refused({ plan: [{ ...wf, dependsOn: [{ workflow: 'b' }] }] })).toEqual({ error: "invalid run: 'a' depends on 'b', which is not before it in the plan", code: 'DSTACK_ERR_USAGE' });
    expect(await refused({ plan: [{ ...wf, resources: { gpu: { count: -1 }, interruptible: false } }] })).toMatchObject({ code: 'DSTACK_ERR_USAGE', error: expect.stringContaining("'plan.0.resources' at 'gpu.count'") });
    expect(await refused({ plan: [{ ...wf, resources: { ...wf.resources, labels: ['no way'] } }] })).toMatchObject({ code: 'DSTACK_ERR_USAGE', error: expect.stringContaining('labels.0') });
    expect(await refused({ source: { ...body.source, patch: 'f'.repeat(24) } })).toEqual({ error: `unknown patch '${'f'.repeat(24)}'; upload it with POST /api/patches first`, code: 'DSTACK_ERR_USAGE' });
    expect(await refused({ plan: [{ ...wf, env: { K: '\u0000secret:K\u0000' } }] })).toEqual({ error: "the run refers to secret 'K' but sent no value for it; 'dstack secrets add K'", code: 'DSTACK_ERR_SECRET_UNKNOWN' });
    // Another owner's patch id means nothing here.
    const upload = await fetch(`${server.url}/api/patches`, { method: 'POST', headers: { authorization: `Bearer ${tokens.other!.token}` }, body: 'x' });
    const { id } = (await upload.json()) as { id: string };
    expect(await refused({ source: { ...body.source, patch: id } })).toMatchObject({ code: 'DSTACK_ERR_USAGE' });
    const ok = await api(server.url, token, 'POST', '/api/runs', body);
    expect([ok.status, (ok.json.run as { name: string }).name]).toEqual([201, name]);
    expect(await refused({})).toEqual({ error: `run name '${name}' is taken; ask for another with POST /api/run-names`, code: 'DSTACK_ERR_USAGE' });
  });
});

describe('the user API', () => {
  it('pages runs newest first with a cursor, as dstack ps -n and -a read them', async () => {
    const { server, acme, tokens } = await serverWithUsers();
    const token = tokens.acme!.token;
    const wf = RESOLVED;
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const name = ((await api(server.url, token, 'POST', '/api/run-names')).json as { name: string }).name;
      expect(names).not.toContain(name);
      await api(server.url, token, 'POST', '/api/runs', { name, repo: 'r', workflow: 'a', args: '', plan: [wf], source: { repoUrl: 'r', commit: 'a'.repeat(40), patch: null } });
      names.unshift(name);
    }
    // Newest first, by submission time (runs of the same millisecond in a stable order of their own).
    const all = ((await api(server.url, token, 'GET', '/api/runs?limit=500')).json as { runs: { run: { name: string } }[] }).runs.map((r) => r.run.name);
    expect([...all].sort()).toEqual([...names].sort());
    names.splice(0, 3, ...all);
    const first = (await api(server.url, token, 'GET', '/api/runs?limit=2')).json as { runs: { run: { name: string } }[]; next: string };
    expect(first.runs.map((r) => r.run.name)).toEqual(names.slice(0, 2));
    const second = (await api(server.url, token, 'GET', `/api/runs?limit=2&after=${first.next}`)).json as { runs: { run: { name: string } }[]; next: string | null };
    expect([second.runs.map((r) => r.run.name), second.next]).toEqual([names.slice(2), null]);
    const listed = (args: string[]) => cli(['ps', ...args], { cwd: acme, home: acme }).then((r) => [...r.stdout.matchAll(/^([a-z]+-[a-z]+-\d+) /gm)].map((m) => m[1]));
    expect(await listed(['-n', '2'])).toEqual(names.slice(0, 2));
    expect(await listed(['-a'])).toEqual(names);
    expect(await listed([])).toEqual(names);
  });
});

describe('dstack run against a server with an agent', () => {
  it('streams the job output live from the start with the secret masked, and exits with the run: 0 when every job is done', async () => {
    const { acme, repo } = await serverWithAgent();
    fs.writeFileSync(path.join(repo.cwd, 'data.txt'), 'not pushed\n');
    await cli(['secrets', 'add', 'API_KEY'], { cwd: repo.cwd, home: acme, input: 'k3y' });
    const r = await cli(['run', 'hello', 'x y'], { cwd: repo.cwd, home: acme });
    expect(r.stderr).toBe('');
    // Jobs print to a terminal (a pty on the agent): lines end in CR LF.
    expect(r.stdout).toContain('not pushed\r\nargs: x y\r\nsecret: ***\r\n');
    expect(r.stdout).toMatch(/JOB +STATUS +EXIT +TIME +REASON\nhello +done +0 /);
    expect(r.code).toBe(0);
    const name = runNameOf(r.stdout);
    // The whole log again, from the start.
    expect((await cli(['logs', name], { cwd: repo.cwd, home: acme })).stdout).toBe('not pushed\r\nargs: x y\r\nsecret: ***\r\n');
  });

  it('stops the run on the server at Ctrl+C, and dstack stop from another terminal stops it too, ending dstack logs -f', async () => {
    const { acme, repo } = await serverWithAgent({ DSTACK_STOP_GRACE_SECONDS: '1' });

    const run = startCli(['run', 'slow'], { cwd: repo.cwd, home: acme });
    await waitFor(() => run.output().stdout.includes('started\r\n'), 30_000, 'the job to print');
    run.kill('SIGINT');
    const stopped = await run.exited;
    expect(stopped.stdout).toContain('Stopping… (press Ctrl+C again to abort)');
    expect(stopped.stdout).toMatch(/slow +stopped /);
    expect(stopped.code).toBe(1);

    const detached = runNameOf((await cli(['run', 'slow', '-d'], { cwd: repo.cwd, home: acme })).stdout);
    const follow = startCli(['logs', detached, '-f'], { cwd: repo.cwd, home: acme });
    await waitFor(() => follow.output().stdout.includes('started\r\n'), 30_000, 'the detached job to print');
    const stop = await cli(['stop', detached], { cwd: repo.cwd, home: acme });
    expect(stop.stdout).toBe(`Stopping ${detached}…\n${detached}: stopped\n`);
    expect((await follow.exited).code).toBe(0);
  });

  it('aborts the run on the server at a second Ctrl+C, when the job does not heed the first', async () => {
    const { acme, repo } = await serverWithAgent({ DSTACK_STOP_GRACE_SECONDS: '300' });
    const run = startCli(['run', 'stubborn'], { cwd: repo.cwd, home: acme });
    await waitFor(() => run.output().stdout.includes('started\r\n'), 30_000, 'the job to print');
    run.kill('SIGINT');
    await waitFor(() => run.output().stdout.includes('Stopping…'), 10_000, 'the stop to be asked for');
    run.kill('SIGINT');
    const aborted = await run.exited;
    expect(aborted.stdout).toContain('Aborting…');
    expect(aborted.stdout).toMatch(/stubborn +aborted /);
    expect(aborted.code).toBe(1);
  });
});
