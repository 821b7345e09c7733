import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cli.js';
import { checksWorld } from './check-runs-world.js';

const WORKFLOWS = [
  'workflows:',
  '  - name: hello',
  '    provider: bash',
  '    commands:',
  '      - printf "\\033[1;32mhéllo 😀\\033[0m %s\\n" "${{ run.args }}"',
  '      - sleep 7',
  '      - for i in $(seq 1 3000); do echo "line $i <b>&</b>"; done',
  '      - mkdir -p out && echo weights > out/model.txt',
  '    artifacts:',
  '      - out',
  '  - name: broken',
  '    provider: bash',
  '    commands:',
  '      - echo going wrong',
  '      - exit ${{ code }}',
  '  - name: big',
  '    provider: bash',
  '    resources:',
  '      gpu: 8',
  '    commands:',
  '      - echo never',
  '  - name: slow',
  '    provider: bash',
  '    commands:',
  '      - for i in $(seq 1 600); do echo "tick $i"; sleep 0.1; done',
  '',
].join('\n');

const FILES = { '.dstack/workflows.yaml': WORKFLOWS, '.dstack/variables.yaml': 'variables:\n  broken:\n    code: 3\n' };

describe('check runs', () => {
  it('follow a run from a comment: queued, in progress, completed success with the log tail, a details_url to the run page that needs its key', async () => {
    const w = await checksWorld(FILES);
    await w.comment('/dstack run hello first try');
    const done = await w.completed((await waitFor(() => w.checkRuns()[0]?.external_id, 30_000, 'a check run'))!);
    const run = await w.lastRun();
    expect(done).toMatchObject({ name: 'dstack/hello', head_sha: w.sha(), status: 'completed', conclusion: 'success', external_id: `${run}-0` });
    // Made queued or in progress (the agent may have taken the job before the check run was made), then completed.
    const states = done.updates.map((u) => u.status ?? (u.conclusion ? 'completed' : '')).filter((s, i, all) => s !== all[i - 1]);
    expect(states.slice(-2)).toEqual(['in_progress', 'completed']);
    expect(['queued', 'in_progress']).toContain(states[0]);
    expect(done.output.title).toBe('Done (exit 0)');
    expect(done.output.summary).toContain(`| started by | @alice (comment) at ${w.sha().slice(0, 7)} |`);
    expect(done.output.summary).toContain('| arguments | `first try` |');
    expect(done.output.summary).toContain('| agent | octo/gpu-box |');
    expect(done.output.summary).toMatch(/- \[`out`\]\(http:\/\/127\.0\.0\.1:\d+\/runs\/[a-z]+-[a-z]+-\d+\/jobs\/[a-z0-9-]+\/artifact\?path=out&key=[\w-]+\): 1 file, /);
    // The log's end, without its colours, in a code block.
    expect(done.output.text).toContain('héllo 😀 first try');
    expect(done.output.text).not.toContain('\x1b');
    expect(done.output.text).toMatch(/line 3000 <b>&<\/b>\n```$/);
    expect(done.actions.map((a) => a.identifier)).toEqual(['dstack-tag-latest']);

    // The run page: with its key, escaped HTML with the job and its log; without it, or with another run's, nothing.
    const url = new URL(done.details_url!);
    expect(url.pathname).toBe(`/runs/${run}`);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`<h1>Run ${run} <span class="done">done</span></h1>`);
    expect(html).toContain('line 3000 &lt;b&gt;&amp;&lt;/b&gt;');
    expect(html).not.toContain('<b>&</b>');
    // The run's comment links to the same page.
    await waitFor(() => w.botComments().some((c) => c.body.includes(`[\`${run}\`](${done.details_url})`)), 10_000, 'the comment to link to the run page');
    expect((await fetch(`${url.origin}${url.pathname}`)).status).toBe(404);
    expect((await fetch(`${url.origin}${url.pathname}?key=${'A'.repeat(32)}`)).status).toBe(404);
    expect((await fetch(`${url.origin}/runs/no-such-run-1?key=${url.searchParams.get('key')}`)).status).toBe(404);
    // The artifact's download from the summary: a tar of out/ with its length.
    const link = /\]\((http:[^)]+artifact[^)]+)\)/.exec(done.output.summary!)![1]!;
    const tar = await fetch(link);
    expect(tar.status).toBe(200);
    const body = Buffer.from(await tar.arrayBuffer());
    expect(Number(tar.headers.get('content-length'))).toBe(body.length);
    expect(body.toString('latin1')).toContain('weights');
    expect((await fetch(link.replace(/key=[\w-]+/, 'key=nope'))).status).toBe(404);
  });

  it('end failed for a failing job, cancelled for one stopped with the Stop button, and Re-run runs the workflow again at the same commit', async () => {
    const w = await checksWorld(FILES);
    await w.comment('/dstack run broken --code 4');
    const broken = await w.completed((await waitFor(() => w.checkRuns().find((c) => c.name === 'dstack/broken')?.external_id, 30_000, 'a check run'))!);
    expect(broken).toMatchObject({ conclusion: 'failure', output: { title: 'Failed (exit 4)' } });
    expect(broken.output.summary).toContain('| exit code | 4 |');
    expect(broken.output.text).toContain('going wrong');
    expect(broken.actions).toEqual([]);

    // A job no agent can take: queued, saying why, until it is stopped.
    await w.comment('/dstack run big');
    const bigJob = await waitFor(() => w.checkRuns().find((c) => c.name === 'dstack/big')?.external_id, 30_000, 'the big check run');
    const queued = await w.checkRun(bigJob!, (c) => c.status === 'queued' && /waiting \| .*8/.test(c.output.summary ?? ''), 'the queued check run with its reason');
    expect(queued.output.title).toBe('Waiting for an agent');
    await w.comment(`/dstack stop ${bigJob!.replace(/-\d+$/, '')}`);
    expect((await w.completed(bigJob!)).conclusion).toBe('cancelled');

    await w.comment('/dstack run slow');
    const slowJob = await waitFor(() => w.checkRuns().find((c) => c.name === 'dstack/slow')?.external_id, 30_000, 'the slow check run');
    const running = await w.checkRun(slowJob!, (c) => c.status === 'in_progress' && (c.output.text ?? '').includes('tick'), 'the running check run');
    expect(running.actions.map((a) => a.identifier)).toEqual(['dstack-stop']);
    // Someone without write permission cannot stop it.
    w.sim.setPermission({ owner: 'octo', repo: 'models', user: 'mallory', permission: 'read' });
    await w.sim.requestAction(running.id, 'dstack-stop', 'mallory');
    await new Promise((r) => setTimeout(r, 1500));
    expect(w.checkRuns().find((c) => c.id === running.id)!.status).toBe('in_progress');
    await w.sim.requestAction(running.id, 'dstack-stop', 'alice');
    const stopped = await w.completed(slowJob!);
    expect(stopped.conclusion).toBe('cancelled');
    expect(stopped.output.title).toMatch(/^Stopped/);

    // Re-run of the failed one: a new run of broken at the same commit, with its own check run.
    await w.sim.rerequestCheckRun(broken.id, 'alice');
    const again = (await waitFor(() => w.checkRuns().find((c) => c.name === 'dstack/broken' && c.id !== broken.id), 30_000, 'the re-run check run'))!;
    expect(again.head_sha).toBe(broken.head_sha);
    expect(again.external_id).not.toBe(broken.external_id);
    // The same run again: with the variable it was asked for.
    expect(await w.completed(again.external_id!)).toMatchObject({ conclusion: 'failure', output: { title: 'Failed (exit 4)' } });
  });

  it('complete every check run with 429, 403 and 5xx answers on a fifth of the requests, and a final update owed across a restart lands', async () => {
    const w = await checksWorld(FILES);
    w.sim.faults.set({ rate: 0.2, kinds: ['rate-limit-429', 'rate-limit-403', 'secondary-403', 'server-500', 'bad-gateway-502', 'unavailable-503'], seed: 7, retryAfter: 1 });
    for (const wf of ['hello', 'broken', 'hello']) await w.comment(`/dstack run ${wf}`);
    // A command may itself fail under these faults (the reply says so); every run that started has its check run completed.
    const finished = async () => {
      const { runs } = await w.api().call<{ runs: { run: { name: string; workflow: string }; status: string }[] }>('GET', '/api/runs');
      const checks = w.checkRuns();
      const answered = w.botComments().length >= 3;
      return answered && runs.length > 0 && checks.length === runs.length && checks.every((c) => c.status === 'completed') && runs;
    };
    const runs = (await waitFor(finished, 240_000, 'every check run to complete')) as { run: { workflow: string } }[];
    const expected = runs.map((r) => (r.run.workflow === 'broken' ? 'failure' : 'success')).sort();
    expect(w.checkRuns().map((c) => c.conclusion).sort()).toEqual(expected);
    expect(w.sim.faults.injected().length).toBeGreaterThan(0);
    w.sim.faults.clear();

    // Every update of check runs fails while a job ends; the server stops; the next one sends what it owed.
    const before = w.checkRuns().length;
    await w.comment('/dstack run hello');
    const jobId = await waitFor(() => w.checkRuns()[before]?.external_id, 30_000, 'a new check run');
    w.sim.faults.set({ rate: 1, kinds: ['server-500'], operations: ['checks/update'] });
    await waitFor(async () => (await w.api().call<{ status: string }>('GET', `/api/runs/${jobId!.replace(/-\d+$/, '')}`)).status === 'done', 30_000, 'the run to end');
    await new Promise((r) => setTimeout(r, 1000));
    await w.restart();
    expect(w.checkRuns().find((c) => c.external_id === jobId)!.status).not.toBe('completed');
    w.sim.faults.clear();
    expect((await w.completed(jobId!)).conclusion).toBe('success');
  }, 300_000);
});
