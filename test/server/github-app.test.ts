import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { startGithubSim, type GithubSim } from '../github-sim/start-github-sim.js';
import { userApi } from '../helpers/api.js';
import { cli, FIXTURE_BIN, tempDir, waitFor, writeFiles } from '../helpers/cli.js';
import { UNTRUSTED_ON_HOST } from '../../agent/runner-agent.js';
import { workTree } from '../helpers/git-repo.js';
import { headOnly } from '../helpers/raw-http.js';
import { createToken, startAgent, startServer, type ServerProc } from '../helpers/server.js';

const OWNER = 'octo';
const REPO = 'models';

interface PublicRun {
  run: { name: string; workflow: string; args: string; owner: string; repo: string; source: { repoUrl: string; commit: string } | null };
  status: string;
  jobs: { id: string; workflow: string; status: string; reason: string | null }[];
}

interface SimComment {
  id: number;
  body: string;
  user: { login: string };
  issue_number: number;
  reactions_list: { content: string; user: string }[];
}

const HELLO = [
  'workflows:',
  '  - name: hello',
  '    provider: bash',
  '    commands:',
  '      - echo "hello from $(cat marker.txt)" ${{ run.args }}',
  '      - echo "greeting=${{ greeting }}"',
  '',
].join('\n');
const VARIABLES = 'variables:\n  hello:\n    greeting: hi\n';
/** A repository with the hello workflow. */
const FILES = { '.dstack/workflows.yaml': HELLO, '.dstack/variables.yaml': VARIABLES, 'marker.txt': 'main\n' };

interface World {
  sim: GithubSim;
  server: ServerProc;
  api: ReturnType<typeof userApi>;
  dataDir: string;
  tree: ReturnType<typeof workTree>;
  cloneUrl: string;
  installationId: number;
  userToken: string;
  /** What the agent printed so far ('' without one). */
  agentOutput: () => string;
}

const sims: GithubSim[] = [];
afterEach(async () => {
  for (const sim of sims.splice(0)) await sim.close().catch(() => {});
});

/** The fake GitHub with octo/models installed, a real dstack-app configured for it, and (unless `agent: false`) a real agent of octo. */
async function world(files: Record<string, string>, options: { agent?: boolean; agentPath?: string; agentArgs?: string[] } = {}): Promise<World> {
  const sim = await startGithubSim();
  sims.push(sim);
  const tree = workTree(files, 'dstack-gh-work-');
  const repo = await sim.createRepo({ owner: OWNER, name: REPO, path: tree.dir, private: true });
  const installation = await sim.createInstallation({ account: OWNER });
  const dataDir = tempDir('dstack-gh-server-');
  const server = await startServer(dataDir, sim.env());
  sim.setWebhookUrl(`${server.url}/api/github/webhooks`);
  onTestFailed(() => {
    process.stderr.write(`--- comments:\n${JSON.stringify((sim.comments({ owner: OWNER, repo: REPO }) as unknown as SimComment[]).map((c) => c.body), null, 1)}\n--- dstack-app output:\n${server.output()}\n--- agent output:\n${agentOutput()}\n--- sim requests:\n${sim.requests.log().map((r) => `${r.method} ${r.path} ${r.status}`).join('\n')}\n`);
  });
  const { token } = await createToken(dataDir, OWNER, 'user');
  let agentOutput = () => '';
  if (options.agent !== false) {
    const agentToken = await createToken(dataDir, OWNER, 'agent');
    const env = options.agentPath ? { PATH: `${options.agentPath}:${FIXTURE_BIN}:${process.env.PATH}` } : {};
    agentOutput = (await startAgent({ url: server.url, token: agentToken.token, name: 'gpu-box', workDir: tempDir('dstack-gh-agent-'), env, args: options.agentArgs })).output;
  }
  return { sim, server, api: userApi(server.url, token), dataDir, tree, cloneUrl: repo.clone_url, installationId: installation.id, userToken: token, agentOutput };
}

/** Waits for `check` to give something (not false or undefined), and gives it. */
async function until<T>(check: () => T | false | undefined | Promise<T | false | undefined>, what = 'condition', ms = 30_000): Promise<T> {
  return (await waitFor(check, ms, what)) as T;
}

const comments = (w: World) => w.sim.comments({ owner: OWNER, repo: REPO }) as unknown as SimComment[];
const botComments = (w: World) => comments(w).filter((c) => c.user.login === w.sim.botLogin);
const runs = async (w: World) => (await w.api.call<{ runs: PublicRun[] }>('GET', '/api/runs')).runs;

async function pullRequest(w: World, branch: string, files: Record<string, string>): Promise<{ number: number; sha: string }> {
  w.tree.git('checkout', '--quiet', '-b', branch);
  const sha = w.tree.commit(files, `on ${branch}`);
  w.tree.git('checkout', '--quiet', 'main');
  await w.sim.push({ owner: OWNER, repo: REPO, path: w.tree.dir, refspecs: [`refs/heads/${branch}:refs/heads/${branch}`] });
  const pr = await w.sim.createPull({ owner: OWNER, repo: REPO, head: branch, title: `from ${branch}` });
  expect(pr.head_sha).toBe(sha);
  return { number: pr.number, sha };
}

/** A pull request to octo/models from stranger's fork, whose head changes marker.txt. */
async function forkPull(w: World): Promise<{ pr: { number: number }; sha: string }> {
  const fork = workTree(FILES, 'dstack-gh-work-');
  fork.git('fetch', '--quiet', w.tree.dir, 'main');
  fork.git('reset', '--quiet', '--hard', 'FETCH_HEAD');
  fork.git('checkout', '--quiet', '-b', 'contrib');
  const sha = fork.commit({ 'marker.txt': 'the-fork\n' }, 'from a fork');
  // Public, so that the app can read its pushes (a fork's pushes are checked against the comment's time).
  await w.sim.createRepo({ owner: 'stranger', name: REPO, path: fork.dir, forkOf: `${OWNER}/${REPO}`, private: false });
  const pr = await w.sim.createPull({ owner: OWNER, repo: REPO, head: 'stranger:contrib', title: 'fork' });
  expect(pr.head_sha).toBe(sha);
  return { pr, sha };
}

/** The run comment of `run`, once its body says `status`. */
function runComment(w: World, run: string, status: string): Promise<SimComment> {
  return until(() => botComments(w).find((c) => c.body.includes(`<!-- dstack-run ${run} -->`) && c.body.includes(`**${status}**`)), `the comment of ${run} to say ${status}`);
}

describe('the GitHub App', () => {
  it('runs /dstack run from a pull-request comment at its head commit, with eyes at once and one comment edited to done', async () => {
    const w = await world(FILES);
    const pr = await pullRequest(w, 'feature', { 'marker.txt': 'the-pr-head\n' });
    const comment = await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: 'Let us see:\r\n/dstack run hello --greeting "good day" extra "two words"\r\nthanks' });
    expect(comment.delivery?.status).toBe(200);
    const [run] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list;
    });
    expect(run!.run).toMatchObject({ workflow: 'hello', owner: OWNER, repo: w.cloneUrl, source: { repoUrl: w.cloneUrl, commit: pr.sha } });
    expect(run!.run.args).toBe("extra 'two words'");
    const name = run!.run.name;
    const done = await runComment(w, name, 'done');
    expect(comments(w).find((c) => c.id === comment.id)!.reactions_list).toEqual([{ content: 'eyes', user: w.sim.botLogin }]);
    // The job's name links to the run page when the server has one.
    expect(done.body).toMatch(/\| (`hello`|\[`hello`\]\(http:\/\/[^)]+\)) \| ✅ done \| \d+ s \|/);
    // One comment for the run, edited in place.
    expect(botComments(w).filter((c) => c.body.includes('dstack-run'))).toHaveLength(1);
    const { stdout } = await cli(['logs', name], { cwd: tempDir(), home: remoteHome(w) });
    expect(stdout).toContain('hello from the-pr-head extra two words');
    expect(stdout).toContain('greeting=good day');
  });

  it('runs nothing of a variable set in a comment: $(…), backticks and quotes print as typed, bare and in double quotes', async () => {
    const marker = path.join(tempDir(), 'ran');
    const workflow = ['workflows:', '  - name: inj', '    provider: bash', '    commands:', '      - echo ${{ foo }} ${{ bar }}', '      - echo "[${{ foo }}|${{ bar }}]"', ''].join('\n');
    const w = await world({ '.dstack/workflows.yaml': workflow, '.dstack/variables.yaml': 'variables:\n  inj:\n    foo: x\n    bar: x\n' });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'inject' });
    const foo = `$(touch ${marker})"; touch ${marker}; "`;
    const bar = `\`touch ${marker}\`'`;
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: `/dstack run inj --foo '${foo}' --bar "\\\`touch ${marker}\\\`'"` });
    const [run] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list;
    });
    await runComment(w, run!.run.name, 'done');
    const { stdout } = await cli(['logs', run!.run.name], { cwd: tempDir(), home: remoteHome(w) });
    const lines = stdout.split(/\r?\n/);
    expect(lines).toContain(`${foo} ${bar}`);
    expect(lines).toContain(`[${foo}|${bar}]`);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('gets the run comment to its end while its edits fail more often than Octokit retries', async () => {
    const w = await world(FILES);
    w.sim.faults.failNext('bad-gateway-502', 6, ['issues/update-comment']);
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'flaky' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    const [run] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list;
    });
    await runComment(w, run!.run.name, 'done');
    expect(w.sim.faults.injected()).toHaveLength(6);
    expect(w.server.output()).toMatch(/could not update the comment of run \S+: /);
  });

  it('answers a user without write permission, and runs nothing; help is for anyone', async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'try it' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'mallory', permission: 'read', body: '/dstack run hello' });
    const [refusal] = await until(() => {
      const bot = botComments(w);
      return bot.length === 1 && bot;
    });
    expect(refusal!.body).toBe(
      `@mallory only people with write, maintain or admin permission on ${OWNER}/${REPO} may run, stop or tag; you have read permission, so \`/dstack run hello\` did nothing.`,
    );
    // Both commands of one comment in one reply, help answered.
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'eve', body: '/dstack stop\n/dstack help' });
    await waitFor(() => botComments(w).length === 2);
    const both = botComments(w)[1]!.body;
    expect(both).toMatch(
      new RegExp(`^@eve your 2 commands \\(only people with write, maintain or admin permission on ${OWNER}/${REPO} may run, stop or tag\\):\n\n1\\. \`/dstack stop\`: did nothing: you have no permission\\.\n2\\. \`/dstack help\`: Commands, one per line`),
    );
    expect(both).toContain('\n   | `/dstack run WORKFLOW [--NAME VALUE] [ARGS]` |');
    expect(await runs(w)).toEqual([]);
  });

  it("answers a reader's comment of 10,000 commands with one reply, and a writer's later command at once", async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'flood' });
    const flood = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'mallory', permission: 'read', body: Array(10_000).fill('/dstack run hello').join('\n') });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack stop' });
    await until(() => botComments(w).find((c) => c.body === 'No run started here is still going.'), "the writer's reply");
    const refusal = '@mallory this comment has 10000 `/dstack` commands and one comment may have at most 10, so none of them ran; split them over several comments.';
    await until(() => botComments(w).find((c) => c.body === refusal), "the reader's refusal");
    expect(comments(w).find((c) => c.id === flood.id)!.reactions_list).toEqual([{ content: 'eyes', user: w.sim.botLogin }]);
    expect(botComments(w).map((c) => c.body).sort()).toEqual(['No run started here is still going.', refusal].sort());
    expect(await runs(w)).toEqual([]);
  });

  it('refuses a writer\'s comment of 11 commands whole, with one reply, and runs none of them', async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'eleven' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: Array(11).fill('/dstack run hello').join('\n') });
    // A later command is handled after it, in the repository's order: by then the first is done.
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', body: '/dstack stop' });
    await until(() => botComments(w).length === 2, 'both replies');
    expect(botComments(w).map((c) => c.body)).toEqual([
      '@alice this comment has 11 `/dstack` commands and one comment may have at most 10, so none of them ran; split them over several comments.',
      'No run started here is still going.',
    ]);
    expect(await runs(w)).toEqual([]);
  });

  it('refuses a reader once per pull request in ten minutes; their later comments there get a confused reaction only', async () => {
    const w = await world(FILES, { agent: false });
    const pr = await pullRequest(w, 'feature', { 'marker.txt': 'pr\n' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'mallory', permission: 'read', body: '/dstack run hello' });
    await until(() => botComments(w).length === 1, 'the refusal');
    const again = await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'mallory', body: '/dstack run hello\n/dstack stop' });
    await until(() => comments(w).find((c) => c.id === again.id)!.reactions_list.length > 0, 'a reaction to the second comment');
    expect(comments(w).find((c) => c.id === again.id)!.reactions_list).toEqual([{ content: 'confused', user: w.sim.botLogin }]);
    // Another issue is answered, and so is a writer.
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'elsewhere' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'mallory', body: '/dstack stop' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack stop' });
    await until(() => botComments(w).length === 3, 'the other replies');
    // The last two come in either order: the reader's reply is written outside the queue.
    expect(botComments(w).map((c) => `#${c.issue_number} ${c.body.slice(0, 40)}`).sort()).toEqual(
      [`#${pr.number} @mallory only people with write, maintai`, `#${issue.number} @mallory only people with write, maintai`, `#${pr.number} No run started here is still going.`].sort(),
    );
  });

  it("asks GitHub once about a reader who floods a pull request with comments, reads no head for them, and still answers a writer's run", async () => {
    const w = await world(FILES, { agent: false });
    const pr = await pullRequest(w, 'feature', { 'marker.txt': 'pr\n' });
    for (let i = 0; i < 20; i++) await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'mallory', permission: 'read', body: '/dstack run hello' });
    await until(() => comments(w).filter((c) => c.user.login === 'mallory' && c.reactions_list.length > 0).length === 20, 'a reaction to each of the reader\'s comments');
    expect(w.sim.requests.count('repos/get-collaborator-permission-level')).toBe(1);
    expect(w.sim.requests.count('pulls/get')).toBe(0);
    expect(w.sim.requests.count('repos/list-activities')).toBe(0);
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    await until(async () => (await runs(w)).length === 1, "the writer's run");
    await until(() => botComments(w).find((c) => c.body.startsWith('@mallory')), "the reader's one refusal");
    expect(botComments(w).filter((c) => c.body.startsWith('@mallory'))).toHaveLength(1);
  });

  it("answers a writer's several commands in one reply, each outcome in order", async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'several' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello\n/dstack stop\n/dstack tag slim-nothing-9 v1\n/dstack deploy' });
    const reply = await until(() => botComments(w).find((c) => c.body.startsWith('@alice')), 'the reply');
    const [run] = await runs(w);
    const name = run!.run.name;
    expect(reply.body).toBe(
      [
        '@alice your 4 commands:',
        '',
        `1. \`/dstack run hello\`: started \`${name}\` (its own comment shows how it goes).`,
        `2. \`/dstack stop\`: Stopping \`${name}\`.`,
        '3. `/dstack tag slim-nothing-9 v1`: failed:',
        '',
        '   ```',
        "   unknown run 'slim-nothing-9' in octo/models",
        '   ```',
        "4. `/dstack deploy`: unknown command 'deploy'; the commands are run, stop, tag and help ('/dstack help')",
      ].join('\n'),
    );
    await runComment(w, name, 'stopped');
    expect(botComments(w)).toHaveLength(2);
  });

  it('says so in one reply, with a confused reaction, when GitHub does not answer what the commenter may do', async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'outage' });
    w.sim.faults.failNext('server-500', 4, ['repos/get-collaborator-permission-level']);
    const comment = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello\n/dstack stop' });
    const [reply] = await until(() => {
      const bot = botComments(w);
      return bot.length === 1 && bot;
    }, 'the reply', 60_000);
    expect(reply!.body).toMatch(/^@alice could not ask GitHub for your permission on octo\/models, so nothing ran; comment again in a while:\n\n```\nGitHub answered 500: .+\n```$/);
    await until(() => comments(w).find((c) => c.id === comment.id)!.reactions_list.length > 0, 'the reaction');
    expect(comments(w).find((c) => c.id === comment.id)!.reactions_list).toEqual([{ content: 'confused', user: w.sim.botLogin }]);
    expect(await runs(w)).toEqual([]);
  }, 90_000);

  it('replies with the exact error of a workflow file, with its file, line and column', async () => {
    const w = await world({ '.dstack/workflows.yaml': 'workflows:\n  - name: hello\n    provider: bash\n    comands: [echo hi]\n' }, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'broken' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'admin', body: '/dstack run hello' });
    const [reply] = await until(() => {
      const bot = botComments(w);
      return bot.length === 1 && bot;
    });
    expect(reply!.body).toBe(
      "@alice `/dstack run hello` failed:\n\n```\n.dstack/workflows.yaml:4:5: unknown key 'comands' in workflow 'hello' (did you mean 'commands'?)\n```",
    );
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', body: '/dstack run hello "unclosed' });
    await waitFor(() => botComments(w).length === 2);
    expect(botComments(w)[1]!.body).toBe('@alice `/dstack run hello "unclosed`: unclosed " in: /dstack run hello "unclosed');
    expect(await runs(w)).toEqual([]);
  });

  it('runs an edited comment nothing, and the same delivery twice acts once', async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'twice' });
    const first = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    await waitFor(async () => (await runs(w)).length === 1);
    await w.sim.editComment({ owner: OWNER, repo: REPO, id: first.id, body: '/dstack run hello again' });
    const again = await w.sim.redeliver(first.delivery!.id);
    expect(again?.status).toBe(200);
    // Both answered; give the app time to act on them, were it to.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await runs(w)).toHaveLength(1);
    expect(w.server.output()).toContain(`GitHub delivery ${first.delivery!.id} (issue_comment) seen before: ignored`);
  });

  it('refuses a webhook with a bad signature with 400 and does nothing', async () => {
    const w = await world(FILES, { agent: false });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'forged' });
    const real = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: 'just talk' });
    const payload = (w.sim.deliveries() as { id: string; payload: { comment: { body: string } } }[]).find((d) => d.id === real.delivery!.id)!.payload;
    payload.comment.body = '/dstack run hello';
    const body = JSON.stringify(payload);
    const forged = `sha256=${crypto.createHmac('sha256', 'not-the-secret').update(body).digest('hex')}`;
    const res = await fetch(`${w.server.url}/api/github/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'issue_comment', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': forged },
      body,
    });
    expect(res.status).toBe(400);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await runs(w)).toEqual([]);
    expect(botComments(w)).toEqual([]);
  });

  it('answers a delivery declared longer than GitHub ever sends (25 MB) with 413 at once, from its header', async () => {
    const w = await world(FILES, { agent: false });
    const started = Date.now();
    const answer = await headOnly(Number(new URL(w.server.url).port), `POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: issue_comment\r\nX-GitHub-Delivery: ${crypto.randomUUID()}\r\nContent-Length: 2000000000\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(answer.slice(answer.indexOf('\r\n\r\n') + 4)).toBe(`{"error":"the delivery of 2000000000 bytes is over the ${25 << 20}-byte limit; GitHub sends at most 25 MB","code":"DSTACK_ERR_USAGE"}`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses a delivery sent without a length once more than 25 MB of it came, and reads no more', async () => {
    const w = await world(FILES, { agent: false });
    const res = await fetch(`${w.server.url}/api/github/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': 'sha256=00' },
      body: endless(),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: `the delivery is over the ${25 << 20}-byte limit; GitHub sends at most 25 MB`, code: 'DSTACK_ERR_USAGE' });
  });

  it('runs a fork pull request because a writer asked, at the fork head, with the token fetched by the agent and shown nowhere', async () => {
    const git = recordingGit();
    // Its owner trusts every fork's code on this host agent (else it declines, as the next test shows).
    const w = await world(FILES, { agentPath: git.bin, agentArgs: ['--allow-untrusted-on-host'] });
    const { pr, sha } = await forkPull(w);
    // The fork's author may not run it.
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'stranger', body: '/dstack run hello' });
    await waitFor(() => botComments(w).length === 1);
    expect(botComments(w)[0]!.body).toContain('@stranger only people with write');
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'maintainer', permission: 'maintain', body: '/dstack run hello' });
    const [run] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list;
    });
    expect(run!.run.source).toMatchObject({ repoUrl: w.cloneUrl, commit: sha });
    await runComment(w, run!.run.name, 'done');
    const home = remoteHome(w);
    const { stdout: log } = await cli(['logs', run!.run.name], { cwd: tempDir(), home });
    expect(log).toContain('hello from the-fork');
    // The agent asked for a token (the repository is private) and it is in no log, no ps, no store file.
    // The app's installation token, and the one for the agent, scoped to the repository.
    expect(w.sim.requests.count('apps/create-installation-access-token')).toBeGreaterThanOrEqual(2);
    const tokens = git.tokens();
    expect(tokens).toHaveLength(1);
    expect(git.argv()).toContain('clone');
    expect(git.argv()).not.toContain(tokens[0]!);
    const { stdout: ps } = await cli(['ps', '-a', '--json'], { cwd: tempDir(), home });
    for (const token of tokens) {
      expect(log).not.toContain(token);
      expect(ps).not.toContain(token);
      expect(w.server.output()).not.toContain(token);
      expect(w.agentOutput()).not.toContain(token);
      for (const file of filesUnder(w.dataDir)) expect(fs.readFileSync(file).includes(token), file).toBe(false);
    }
  });

  it('declines a fork pull request on a host agent, and the run comment says to serve it with --isolation docker', async () => {
    const w = await world(FILES);
    const { pr } = await forkPull(w);
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'maintainer', permission: 'maintain', body: '/dstack run hello' });
    const [run] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list;
    });
    const hint = 'serve such repositories with an agent started with --isolation docker';
    await until(() => botComments(w).find((c) => c.body.includes(`<!-- dstack-run ${run!.run.name} -->`) && c.body.includes(hint)), 'the run comment to give the hint');
    expect((await runs(w))[0]!.jobs[0]).toMatchObject({ status: 'submitted', reason: `waiting: needs an agent (an agent of ${OWNER}); agents: gpu-box declined it (${UNTRUSTED_ON_HOST})` });
    expect(w.agentOutput()).toContain(`job ${run!.jobs[0]!.id}: declined (${UNTRUSTED_ON_HOST})`);
  });

  it('stops the runs of an issue with /dstack stop, and tags a finished one with /dstack tag', async () => {
    const slow = HELLO + '  - name: slow\n    provider: bash\n    commands: [echo started, sleep 600]\n';
    const w = await world({ ...FILES, '.dstack/workflows.yaml': slow });
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'stop it' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run slow' });
    const [run] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list[0]!.jobs[0]!.status === 'running' && list;
    }, 'the run to start');
    const name = run!.run.name;
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', body: '/dstack stop' });
    await until(() => botComments(w).find((c) => c.body === `Stopping \`${name}\`.`), 'the stop reply');
    await runComment(w, name, 'stopped');
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', body: `/dstack tag ${name} v1\n/dstack tag slim-nothing-9 v1` });
    const tagged = await until(() => botComments(w).find((c) => c.body.startsWith('@alice your 2 commands')), 'the tag reply');
    expect(tagged.body).toBe(
      `@alice your 2 commands:\n\n1. \`/dstack tag ${name} v1\`: Tagged \`${name}\` as \`v1\`; \`depends-on: slow:v1\` uses its artifacts.\n2. \`/dstack tag slim-nothing-9 v1\`: failed:\n\n   \`\`\`\n   unknown run 'slim-nothing-9' in octo/models\n   \`\`\``,
    );
    expect((await w.api.call<{ name: string; run_name: string }[]>('GET', '/api/tags')).map((t) => [t.name, t.run_name])).toEqual([['v1', name]]);
  });

  it('runs on: push workflows at the pushed commit, and a newer push stops the older run', async () => {
    const slow = [
      'workflows:',
      '  - name: train',
      '    provider: bash',
      '    on:',
      '      push:',
      '        branches: [main, "release/*"]',
      '    commands:',
      '      - echo "training $(cat marker.txt)"',
      '      - sleep 600',
      '  - name: manual',
      '    provider: bash',
      '    commands: [echo never on a push]',
      '',
    ].join('\n');
    const w = await world({ '.dstack/workflows.yaml': slow, 'marker.txt': 'zero\n' });
    const first = w.tree.commit({ 'marker.txt': 'one\n' });
    await w.sim.push({ owner: OWNER, repo: REPO, path: w.tree.dir, refspecs: ['refs/heads/main:refs/heads/main'] });
    const [older] = await until(async () => {
      const list = await runs(w);
      return list.length === 1 && list[0]!.jobs[0]!.status === 'running' && list;
    }, 'the first push run to run');
    expect(older!.run).toMatchObject({ workflow: 'train', source: { commit: first } });
    const second = w.tree.commit({ 'marker.txt': 'two\n' });
    await w.sim.push({ owner: OWNER, repo: REPO, path: w.tree.dir, refspecs: ['refs/heads/main:refs/heads/main'] });
    const list = await until(async () => {
      const all = await runs(w);
      return all.length === 2 && all.find((r) => r.run.name === older!.run.name)!.status === 'stopped' && all;
    }, 'the older run to stop');
    const newer = list.find((r) => r.run.name !== older!.run.name)!;
    expect(newer.run).toMatchObject({ workflow: 'train', source: { commit: second } });
    // A branch the filters do not match runs nothing.
    w.tree.git('checkout', '--quiet', '-b', 'scratch');
    w.tree.commit({ 'marker.txt': 'scratch\n' });
    await w.sim.push({ owner: OWNER, repo: REPO, path: w.tree.dir, refspecs: ['refs/heads/scratch:refs/heads/scratch'] });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await runs(w)).toHaveLength(2);
    await w.api.stop(newer.run.name, true);
  });
});

/** A DSTACK_HOME whose config points the CLI at the world's server, with a user token of octo. */
function remoteHome(w: World): string {
  const home = tempDir('dstack-gh-home-');
  fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify({ server: { url: w.server.url, token: w.userToken } }));
  return home;
}

/**
 * A `git` first on the agent's PATH that notes the credential header git is given (through
 * GIT_CONFIG_*, as agent/checkout/repo-mirrors.ts passes it) and its command line, then runs git.
 */
function recordingGit(): { bin: string; tokens: () => string[]; argv: () => string } {
  const bin = tempDir('dstack-gh-bin-');
  const record = path.join(bin, 'record');
  const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  fs.writeFileSync(
    path.join(bin, 'git'),
    `#!/bin/sh\nprintf 'argv %s\\n' "$*" >> '${record}'\n[ -n "$GIT_CONFIG_VALUE_0" ] && printf 'header %s\\n' "$GIT_CONFIG_VALUE_0" >> '${record}'\nexec '${real}' "$@"\n`,
    { mode: 0o755 },
  );
  const lines = () => (fs.existsSync(record) ? fs.readFileSync(record, 'utf8').split('\n') : []);
  return {
    bin,
    tokens: () => [
      ...new Set(
        lines()
          .filter((l) => l.startsWith('header Authorization: Basic '))
          .map((l) => Buffer.from(l.slice('header Authorization: Basic '.length), 'base64').toString().replace(/^x-access-token:/, '')),
      ),
    ],
    argv: () => lines().filter((l) => l.startsWith('argv ')).join('\n'),
  };
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** A request body without end (sent chunked: no length), 1 MB at a time, up to 200 MB. */
function endless(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent++ >= 200) controller.close();
      else controller.enqueue(new Uint8Array(1 << 20).fill(32));
    },
  });
}
