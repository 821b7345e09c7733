import crypto from 'node:crypto';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { startGithubSim, type GithubSim } from '../github-sim/start-github-sim.js';
import { userApi } from '../helpers/api.js';
import { tempDir, waitFor } from '../helpers/cli.js';
import { workTree } from '../helpers/git-repo.js';
import { createToken, startServer, type ServerProc } from '../helpers/server.js';

// How the GitHub App takes in deliveries when someone tries to make it act twice, lose work, or
// run a commit pushed after the comment that asked for it. Real dstack-app processes, the fake GitHub.

const OWNER = 'octo';
const REPO = 'models';
const FILES = { '.dstack/workflows.yaml': 'workflows:\n  - name: hello\n    provider: bash\n    commands:\n      - echo hello ${{ run.args }}\n', 'marker.txt': 'main\n' };

interface PublicRun {
  run: { name: string; workflow: string; args: string; source: { commit: string } | null };
  status: string;
}

interface SimComment {
  body: string;
  user: { login: string };
}

const sims: GithubSim[] = [];
afterEach(async () => {
  // close() throws when a response or webhook broke GitHub's schema: that fails the test.
  for (const sim of sims.splice(0)) await sim.close();
});

/** octo/models (public) with the app installed, and a real dstack-app for it (no agent: runs stay queued). */
async function world() {
  const sim = await startGithubSim();
  sims.push(sim);
  const tree = workTree(FILES, 'dstack-intake-work-');
  await sim.createRepo({ owner: OWNER, name: REPO, path: tree.dir, private: false });
  await sim.createInstallation({ account: OWNER });
  const dataDir = tempDir('dstack-intake-server-');
  const { token } = await createToken(dataDir, OWNER, 'user');
  const w = {
    sim,
    tree,
    server: undefined as unknown as ServerProc,
    /** Starts dstack-app on the data folder (again, after a kill) and points the sim's webhooks at it. */
    async start() {
      w.server = await startServer(dataDir, sim.env());
      sim.setWebhookUrl(`${w.server.url}/api/github/webhooks`);
    },
    runs: async () => (await userApi(w.server.url, token).call<{ runs: PublicRun[] }>('GET', '/api/runs')).runs,
  };
  await w.start();
  onTestFailed(() => {
    process.stderr.write(`--- comments:\n${JSON.stringify(comments(w).map((c) => `${c.user.login}: ${c.body}`), null, 1)}\n--- dstack-app output:\n${w.server.output()}\n`);
  });
  return w;
}

const comments = (w: { sim: GithubSim }) => w.sim.comments({ owner: OWNER, repo: REPO }) as unknown as SimComment[];
const runComments = (w: { sim: GithubSim }) => comments(w).filter((c) => c.user.login === w.sim.botLogin && c.body.includes('dstack-run'));
/** Waits for `check` to give something (not false or undefined), and gives it. */
async function until<T>(check: () => T | false | undefined | Promise<T | false | undefined>, what: string): Promise<T> {
  return (await waitFor(check, 30_000, what)) as T;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** stranger/models, a fork of octo/models (public unless asked) with a branch `contrib`, and a pull request from it. */
async function forkPull(w: Awaited<ReturnType<typeof world>>, options: { private?: boolean } = {}) {
  const fork = workTree(FILES, 'dstack-intake-work-');
  fork.git('fetch', '--quiet', w.tree.dir, 'main');
  fork.git('reset', '--quiet', '--hard', 'FETCH_HEAD');
  fork.git('checkout', '--quiet', '-b', 'contrib');
  const first = fork.commit({ 'marker.txt': 'reviewed\n' });
  await w.sim.createRepo({ owner: 'stranger', name: REPO, path: fork.dir, forkOf: `${OWNER}/${REPO}`, private: options.private ?? false });
  const pr = await w.sim.createPull({ owner: OWNER, repo: REPO, head: 'stranger:contrib', title: 'fork', user: 'stranger' });
  expect(pr.head_sha).toBe(first);
  /** The fork's author pushes a new commit to the pull request's branch (dated `date`). */
  const push = async (date?: string) => {
    const sha = fork.commit({ 'marker.txt': 'swapped after review\n' }, 'more', date);
    await w.sim.push({ owner: 'stranger', repo: REPO, path: fork.dir, refspecs: ['refs/heads/contrib:refs/heads/contrib'], user: 'stranger' });
    return sha;
  };
  return { number: pr.number, first, push };
}

describe('the GitHub App taking in deliveries', () => {
  it('acts on every command answered before a kill -9 once the server starts again on the same data, each exactly once', async () => {
    const w = await world();
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'queue' });
    // The first comment's question of its author's permission waits 4 s on a rate limit, so the next two wait in the repository's queue.
    w.sim.faults.failNext('rate-limit-429', 1, ['repos/get-collaborator-permission-level'], 4);
    for (const word of ['one', 'two', 'three']) {
      const c = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: `/dstack run hello ${word}` });
      expect(c.delivery?.status).toBe(200);
    }
    expect(await w.runs()).toEqual([]);
    await w.server.kill();

    await w.start();
    const runs = await until(async () => {
      const list = await w.runs();
      return list.length >= 3 && list;
    }, 'three runs');
    expect(runs.map((r) => r.run.args).sort()).toEqual(['one', 'three', 'two']);
    await waitFor(() => runComments(w).length >= 3, 30_000, 'three run comments');
    // Nothing more comes: each was acted on once.
    await sleep(1500);
    expect(await w.runs()).toHaveLength(3);
    expect(runComments(w)).toHaveLength(3);
    expect(w.server.output()).toMatch(/GitHub delivery \S+ \(issue_comment\) was not handled before the server stopped: handling it now/);
  });

  it('starts each run of a comment once and replies once when the server is killed -9 between its two runs', async () => {
    const w = await world();
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'two runs' });
    // The first run's own comment waits 6 s on a rate limit: the first run is stored, the second not yet.
    w.sim.faults.failNext('rate-limit-429', 1, ['issues/create-comment'], 6);
    const comment = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello one\n/dstack run hello two\n/dstack help' });
    await waitFor(() => w.sim.requests.count('issues/create-comment') === 1, 10_000, "the first run's comment to be held");
    const [first] = await w.runs();
    expect(first!.run.args).toBe('one');
    await w.server.kill();
    expect(runComments(w)).toEqual([]);

    await w.start();
    const replies = () => comments(w).filter((c) => c.user.login === w.sim.botLogin && c.body.startsWith('@alice'));
    await waitFor(() => runComments(w).length >= 2 && replies().length >= 1, 30_000, 'two run comments and the reply');
    // Nothing more comes: each run was started once, and each comment posted once.
    await sleep(1500);
    const runs = await w.runs();
    expect(runs.map((r) => r.run.args).sort()).toEqual(['one', 'two']);
    const second = runs.find((r) => r.run.args === 'two')!;
    expect(runs.find((r) => r.run.args === 'one')!.run.name).toBe(first!.run.name);
    expect(runComments(w)).toHaveLength(2);
    for (const run of runs) expect(runComments(w).filter((c) => c.body.includes(`<!-- dstack-run ${run.run.name} -->`))).toHaveLength(1);
    expect(replies()).toHaveLength(1);
    const started = `@alice your 3 commands:\n\n1. \`/dstack run hello one\`: started \`${first!.run.name}\` (its own comment shows how it goes).\n2. \`/dstack run hello two\`: started \`${second.run.name}\` (its own comment shows how it goes).\n3. \`/dstack help\`: `;
    expect(replies()[0]!.body.slice(0, started.length)).toBe(started);
    expect(w.server.output()).toContain(`run ${first!.run.name} (hello) was started by ${comment.delivery!.id}#0 before the server stopped: not started again`);
  });

  it('starts each on: push workflow of a push once when the server is killed -9 between them, and does not stop the one it started', async () => {
    const w = await world();
    const workflows = [
      'workflows:',
      '  - name: hello',
      '    provider: bash',
      '    on:',
      '      push:',
      '        branches: [main]',
      '    commands: [echo hello]',
      '  - name: use',
      '    provider: bash',
      '    on:',
      '      push:',
      '        branches: [main]',
      '    depends-on: [hello:latest]',
      '    commands: [echo use]',
      '',
    ].join('\n');
    const sha = w.tree.commit({ '.dstack/workflows.yaml': workflows });
    // `use` needs hello:latest, which the server lacks: the release it asks GitHub for waits 6 s on a rate limit, after hello's run is stored.
    w.sim.faults.failNext('rate-limit-429', 1, ['repos/get-release-by-tag'], 6);
    await w.sim.push({ owner: OWNER, repo: REPO, path: w.tree.dir, refspecs: ['refs/heads/main:refs/heads/main'] });
    await waitFor(() => w.sim.requests.count('repos/get-release-by-tag') === 1, 10_000, 'the release to be held');
    const [first] = await w.runs();
    expect(first!.run).toMatchObject({ workflow: 'hello', source: { commit: sha } });
    await w.server.kill();

    await w.start();
    await waitFor(() => w.server.output().includes(`push to ${OWNER}/${REPO} main (${sha.slice(0, 7)}) could not run use: `), 30_000, "the replay's end");
    await sleep(1500);
    const runs = await w.runs();
    expect(runs.map((r) => [r.run.name, r.status])).toEqual([[first!.run.name, 'submitted']]);
  });

  it("starts a check run's re-run once when the server is killed -9 before the re-run's comment is made", async () => {
    const w = await world();
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 're-run' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    const check = await until(() => w.sim.checkRuns({ owner: OWNER, repo: REPO })[0] as { id: number } | undefined, 'the check run');
    await waitFor(() => runComments(w).length === 1, 10_000, "the run's comment");
    // The re-run's own comment waits 6 s on a rate limit: the re-run is stored, its delivery not yet handled.
    w.sim.faults.failNext('rate-limit-429', 1, ['issues/create-comment'], 6);
    await w.sim.rerequestCheckRun(check.id, 'alice');
    await waitFor(() => w.sim.requests.count('issues/create-comment') === 2, 10_000, "the re-run's comment to be held");
    expect(await w.runs()).toHaveLength(2);
    await w.server.kill();

    await w.start();
    await waitFor(() => runComments(w).length >= 2, 30_000, "the re-run's comment");
    await sleep(1500);
    const runs = await w.runs();
    expect(runs).toHaveLength(2);
    for (const run of runs) expect(runComments(w).filter((c) => c.body.includes(`<!-- dstack-run ${run.run.name} -->`))).toHaveLength(1);
  });

  it('acts once on a signed body sent again under a new delivery id, and answers the copy 200', async () => {
    const w = await world();
    const issue = w.sim.createIssue({ owner: OWNER, repo: REPO, title: 'replayed' });
    const real = await w.sim.comment({ owner: OWNER, repo: REPO, number: issue.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    await waitFor(async () => (await w.runs()).length === 1, 30_000, 'the run');
    const payload = (w.sim.deliveries() as { id: string; payload: unknown }[]).find((d) => d.id === real.delivery!.id)!.payload;
    const body = JSON.stringify(payload);
    const copy = crypto.randomUUID();
    const res = await fetch(`${w.server.url}/api/github/webhooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'issue_comment',
        'x-github-delivery': copy,
        'x-hub-signature-256': `sha256=${crypto.createHmac('sha256', w.sim.webhookSecret).update(body).digest('hex')}`,
      },
      body,
    });
    expect(res.status).toBe(200);
    await sleep(1500);
    expect(await w.runs()).toHaveLength(1);
    expect(w.server.output()).toContain(`GitHub delivery ${copy} (issue_comment) has the body of an earlier delivery: ignored`);
  });

  it("runs a fork's pull request at the head of the comment's time when its author pushes 0.4 s later while the command waits behind theirs", async () => {
    const w = await world();
    const pr = await forkPull(w);
    // The fork's author fills the repository's queue first: the question of their permission waits 4 s on a rate limit.
    w.sim.faults.failNext('rate-limit-429', 1, ['repos/get-collaborator-permission-level'], 4);
    for (let i = 0; i < 3; i++) await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'stranger', body: '/dstack run hello' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello reviewed' });
    await sleep(400);
    const pushed = await pr.push();
    const outcome = await waitFor(async () => {
      const [run] = await w.runs();
      return run?.run.source?.commit ?? comments(w).find((c) => c.body.startsWith('@alice'))?.body;
    }, 30_000, "alice's run or a refusal");
    // Either the commit alice saw, or nothing with both SHAs: never the one pushed after her comment.
    expect([pr.first, `@alice the head of #${pr.number} changed after your comment: it was \`${pr.first}\` when you wrote it and is \`${pushed}\` now, so \`/dstack run hello reviewed\` did nothing; comment again to run the new head.`]).toContain(outcome);
    await sleep(1000);
    expect((await w.runs()).map((r) => r.run.source?.commit)).not.toContain(pushed);
  });

  it("refuses with both SHAs a fork's pull request pushed between the comment and the delivery's arrival, whatever the commit's date", async () => {
    const w = await world();
    const pr = await forkPull(w);
    const url = `${w.server.url}/api/github/webhooks`;
    // The delivery does not get through at first (GitHub had trouble reaching the server)...
    w.sim.setWebhookUrl(null);
    const comment = await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    expect(comment.delivery?.status).toBeNull();
    // ...the fork's author pushes a commit dated a year before, then the delivery arrives.
    const pushed = await pr.push(new Date(Date.now() - 365 * 24 * 3600 * 1000).toISOString());
    w.sim.setWebhookUrl(url);
    expect((await w.sim.redeliver(comment.delivery!.id))?.status).toBe(200);
    const refusal = await waitFor(() => comments(w).find((c) => c.body.startsWith('@alice'))?.body, 30_000, 'the refusal');
    expect(refusal).toBe(`@alice the head of #${pr.number} changed after your comment: it was \`${pr.first}\` when you wrote it and is \`${pushed}\` now, so \`/dstack run hello\` did nothing; comment again to run the new head.`);
    expect(await w.runs()).toEqual([]);

    // Commenting again runs the new head.
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    const [run] = await until(async () => {
      const list = await w.runs();
      return list.length === 1 && list;
    }, 'the run of the new head');
    expect(run!.run.source?.commit).toBe(pushed);
  });

  it("runs a command replayed after a kill -9 at the head read when it arrived, though the fork's author pushed while the server was down", async () => {
    const w = await world();
    const pr = await forkPull(w);
    // The question of the fork's author's permission holds the queue (a 4 s rate limit), so alice's command waits behind it.
    w.sim.faults.failNext('rate-limit-429', 1, ['repos/get-collaborator-permission-level'], 4);
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'stranger', body: '/dstack help' });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    // Her command's head was read on arrival (the only activity read: help reads none).
    await waitFor(() => w.sim.requests.count('repos/list-activities') === 1, 10_000, 'the head read on arrival');
    await sleep(200);
    expect(await w.runs()).toEqual([]);
    await w.server.kill();
    await pr.push();

    await w.start();
    const [run] = await until(async () => {
      const list = await w.runs();
      return list.length === 1 && list;
    }, 'the replayed run');
    expect(run!.run.source?.commit).toBe(pr.first);
  });

  it("refuses a private fork's pull request, whose pushes the app cannot read, saying why and what to do", async () => {
    const w = await world();
    const pr = await forkPull(w, { private: true });
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    const refusal = await waitFor(() => comments(w).find((c) => c.body.startsWith('@alice'))?.body, 30_000, 'the refusal');
    expect(refusal).toBe(
      `@alice the app cannot tell which commit was the head of #${pr.number} when you wrote your comment (it cannot read the pushes of its head branch, \`contrib\`: a private fork outside this installation, a deleted fork, or no push listed before your comment), so \`/dstack run hello\` did nothing; push the commit to a branch this app can read and comment there.`,
    );
    expect(await w.runs()).toEqual([]);
  });

  it("re-runs a check run at its own commit after the fork's author pushed a newer head", async () => {
    const w = await world();
    const pr = await forkPull(w);
    await w.sim.comment({ owner: OWNER, repo: REPO, number: pr.number, user: 'alice', permission: 'write', body: '/dstack run hello' });
    const check = await until(() => w.sim.checkRuns({ owner: OWNER, repo: REPO })[0] as { id: number; head_sha: string } | undefined, 'the check run');
    expect(check.head_sha).toBe(pr.first);
    const pushed = await pr.push();
    await w.sim.rerequestCheckRun(check.id, 'alice');
    const runs = await until(async () => {
      const list = await w.runs();
      return list.length === 2 && list;
    }, 'the re-run');
    expect(runs.map((r) => r.run.source?.commit)).toEqual([pr.first, pr.first]);
    expect(runs.map((r) => r.run.source?.commit)).not.toContain(pushed);
  });
});
