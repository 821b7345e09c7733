import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openState, type State } from '../../app/state.js';
import { bash, ended } from '../helpers/api.js';
import { cli, closeAfterTest, startCli, tempDir, waitFor, writeFiles } from '../helpers/cli.js';
import { startGithubSim } from '../github-sim/start-github-sim.js';
import { bareRepo } from '../helpers/git-repo.js';
import { createToken, startAgent, startServer, type Proc } from '../helpers/server.js';

const mounted: string[] = [];
afterEach(() => {
  // Lazily: the server killed after the test may still hold files there for a moment.
  for (const dir of mounted.splice(0)) execFileSync('umount', ['-l', dir]);
});

/**
 * A real full disk: a small tmpfs as the server's data folder, filled by a filler file when the
 * test says. Mounting needs root, as these tests have here and in CI: they fail, never skip, without.
 */
function smallDisk(megabytes: number): { dir: string; fill(): void; free(): void } {
  if (process.getuid?.() !== 0) throw new Error('the full-disk tests mount a tmpfs as the server\'s data folder and must run as root (they do in CI)');
  const dir = tempDir('dstack-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir]);
  mounted.push(dir);
  const filler = path.join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = fs.openSync(filler, 'a');
      const block = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) fs.writeSync(fd, block);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        fs.closeSync(fd);
      }
    },
    free() {
      fs.rmSync(filler);
    },
  };
}

/** A server on a small disk with an agent token and a user token of `acme`, its state opened here too. */
async function serverOnSmallDisk(env: NodeJS.ProcessEnv = {}) {
  const disk = smallDisk(32);
  const agentToken = await createToken(disk.dir, 'acme', 'agent');
  const userToken = await createToken(disk.dir, 'acme', 'user');
  const server = await startServer(disk.dir, env);
  const state: State = closeAfterTest(openState(disk.dir));
  return { disk, agentToken, userToken, server, state };
}

/**
 * A server on a small disk whose agent `box` runs `twoPartJob` as RUN: once its first 100 lines are
 * stored, the disk is filled and the job let go on to `line LAST`.
 */
async function jobOnFullDisk(run: string, last: number, env: NodeJS.ProcessEnv = {}) {
  const world = await serverOnSmallDisk(env);
  const go = path.join(tempDir(), 'go');
  submit(world.state, run, twoPartJob(go, 100, last));
  const agent = await startAgent({ url: world.server.url, token: world.agentToken.token, name: 'box', workDir: tempDir() });
  await waitFor(() => logOf(world.state, `${run}-0`).includes('line 100\r\n'), 30_000, 'the first part of the log');
  world.disk.fill();
  fs.writeFileSync(go, '');
  await settle();
  return { ...world, agent };
}

/** A job that prints `line 1`…`line FIRST`, waits for the file `go`, then prints up to `line LAST` and ends. */
function twoPartJob(go: string, first: number, last: number) {
  return bash('count', [
    `for i in $(seq 1 ${first}); do echo "line $i"; done`,
    `while [ ! -e ${go} ]; do sleep 0.05; done`,
    `for i in $(seq ${first + 1} ${last}); do echo "line $i"; done`,
  ]);
}

function submit(state: State, runName: string, job: ReturnType<typeof bash>): void {
  const repo = bareRepo({ 'README.md': 'hi\n' });
  state.service.submit({ repo: repo.repoUrl, workflow: job.name, args: '', runName, plan: [job], executor: null, owner: 'acme', source: { ...repo, patch: null } });
}

const logOf = (state: State, jobId: string) => state.service.readLog(jobId, 0).toString();
const numbers = (log: string) => [...log.matchAll(/^line (\d+)\r$/gm)].map((m) => Number(m[1]));
/** Time for a job to print on after the disk filled (its lines are a few hundred KB, printed in well under this), and for the server to fail to store them. */
const settle = () => new Promise((r) => setTimeout(r, 2000));
const disconnects = (agent: Proc) => agent.output().split('disconnected from').length - 1;

describe('a full data folder on the server', () => {
  it('answers 503 DSTACK_ERR_NO_SPACE naming the folder, says so on /healthz, keeps the log waiting on the connected agent, and stores every line once when space is back', async () => {
    const { disk, userToken, server, state, agent } = await jobOnFullDisk('full-run-1', 20_000);

    const patch = await fetch(`${server.url}/api/patches`, { method: 'POST', headers: { authorization: `Bearer ${userToken.token}`, 'content-type': 'application/octet-stream' }, body: 'diff' });
    expect(patch.status).toBe(503);
    expect(await patch.json()).toEqual({
      code: 'DSTACK_ERR_NO_SPACE',
      error: `no space left on the server's data folder ${disk.dir}: nothing can be stored there until space is freed; try again then`,
    });
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ ok: false, degraded: 'no_space', code: 'DSTACK_ERR_NO_SPACE' });
    // Reads go on: the runs are there to see.
    expect((await fetch(`${server.url}/api/runs/full-run-1`, { headers: { authorization: `Bearer ${userToken.token}` } })).status).toBe(200);

    // The agent stays connected and waits: no reconnects, the job not ended, nothing dropped.
    await new Promise((r) => setTimeout(r, 2000));
    expect(disconnects(agent)).toBe(0);
    expect(agent.output()).not.toMatch(/dropped|aborted/);
    expect(state.service.job('full-run-1-0')!.status).toBe('running');
    expect(server.output()).toContain(`agent acme/box: job full-run-1-0: no space left on the server's data folder ${disk.dir}`);

    disk.free();
    const job = await ended(state, 'full-run-1-0');
    expect([job.status, job.reason, job.log_incomplete]).toEqual(['done', null, 0]);
    expect(numbers(logOf(state, job.id))).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
    // One reconnect, asked for by the server once there was room, to send the rest from the last ack.
    expect(disconnects(agent)).toBe(1);
    expect(agent.output()).toContain('the server has room again: send again from the last ack');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const again = await fetch(`${server.url}/api/patches`, { method: 'POST', headers: { authorization: `Bearer ${userToken.token}`, 'content-type': 'application/octet-stream' }, body: 'diff' });
    expect(again.status).toBe(201);
  });

  it('ends a job whose log could not be kept (its agent was lost while the server waited for space) with the no-space reason, and dstack logs says the log is incomplete', async () => {
    const { disk, userToken, server, state, agent } = await jobOnFullDisk('cut-run-1', 5000, { DSTACK_AGENT_LOST_SECONDS: '3' });
    await agent.kill();
    await waitFor(() => server.output().includes('was lost'), 20_000, 'the server to find the agent lost');
    disk.free();

    const job = await ended(state, 'cut-run-1-0');
    expect(job.status).toBe('aborted');
    expect(job.reason).toMatch(new RegExp(`^no space left on the server's data folder ${disk.dir}: the job's log could not be kept \\(agent box was lost \\(silent for \\d+ s\\) while the server waited for space\\)$`));
    expect(job.log_incomplete).toBe(1);
    expect(numbers(logOf(state, job.id)).slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));

    const home = tempDir('dstack-home-');
    expect((await cli(['config', '--url', server.url, '--token', userToken.token], { cwd: home, home })).stderr).toBe('');
    for (const args of [['logs', 'cut-run-1'], ['logs', 'cut-run-1', '-f']]) {
      const logs = await cli(args, { cwd: home, home });
      expect(logs.stdout).toContain('line 100\r\n');
      expect(logs.stderr).toBe(`dstack: error: the log of count (cut-run-1-0) is incomplete: ${job.reason}\n`);
      expect(logs.code).toBe(1);
    }
  });

  it('stops at the first SIGTERM and ends dstack run at the second, while the server can store nothing and the run cannot end', async () => {
    const { disk, agentToken, userToken, server } = await serverOnSmallDisk();
    await startAgent({ url: server.url, token: agentToken.token, name: 'box', workDir: tempDir() });
    const { cwd, home } = await userRepo(server.url, userToken.token);
    const run = startCli(['run', 'busy'], { cwd, home });
    await waitFor(() => run.output().stdout.includes('started\r\n'), 30_000, 'the job to print');
    disk.fill();
    await settle();
    const exited = await twoSignals(run, 'SIGTERM');
    disk.free();
    expect(exited?.code).toBe(1);
    // The first SIGTERM stops, as Ctrl+C does; the second aborts, and the command ends whatever the server does.
    expect(exited!.stdout).toMatch(/Stopping… \(press Ctrl\+C again to abort\)\n[^]*Aborting…\n[^]*did not end within 5 s of the abort; not waiting for it \('dstack ps \S+' shows how it ends\)\n$/);
  });
});

describe('dstack run against a server that hangs', () => {
  it('ends at the second Ctrl+C, though neither the stop nor the abort is answered', async () => {
    const { server, run } = await hungRun();
    try {
      const exited = await twoSignals(run, 'SIGINT');
      expect(exited?.code).toBe(1);
      expect(exited!.stdout).toMatch(/Stopping… \(press Ctrl\+C again to abort\)\n[^]*Aborting…\n[^]*did not end within 5 s of the abort; not waiting for it/);
    } finally {
      server.child.kill('SIGCONT');
    }
  });

  it('ends at one SIGHUP (the terminal gone), which aborts at once, though the abort is not answered', async () => {
    const { server, run } = await hungRun();
    try {
      run.kill('SIGHUP');
      const exited = await Promise.race([run.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
      expect(exited?.code).toBe(1);
      expect(exited!.stdout).toMatch(/Aborting…\n[^]*did not end within 5 s of the abort; not waiting for it/);
    } finally {
      server.child.kill('SIGCONT');
    }
  });
});

/** `dstack run busy` against a server with an agent, once the job prints; then the server is paused (SIGSTOP): it answers nothing. */
async function hungRun() {
  const disk = tempDir();
  const agentToken = await createToken(disk, 'acme', 'agent');
  const userToken = await createToken(disk, 'acme', 'user');
  const server = await startServer(disk);
  await startAgent({ url: server.url, token: agentToken.token, name: 'box', workDir: tempDir() });
  const { cwd, home } = await userRepo(server.url, userToken.token);
  const run = startCli(['run', 'busy'], { cwd, home });
  await waitFor(() => run.output().stdout.includes('started\r\n'), 30_000, 'the job to print');
  server.child.kill('SIGSTOP');
  return { server, run };
}

/** A DSTACK_HOME configured for the server, and a pushed repository whose workflow `busy` prints on for a minute. */
async function userRepo(url: string, token: string): Promise<{ cwd: string; home: string }> {
  const home = tempDir('dstack-home-');
  expect((await cli(['config', '--url', url, '--token', token], { cwd: home, home })).stderr).toBe('');
  const remote = tempDir('dstack-bare-');
  const cwd = tempDir('dstack-repo-');
  const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
  const git = (...args: string[]) => execFileSync('git', args, { cwd, env: gitEnv });
  execFileSync('git', ['init', '--bare', '--quiet', '-b', 'main', remote]);
  git('init', '--quiet', '-b', 'main');
  // It prints on: once the disk is full its log waits, and so does its end, however it is stopped.
  writeFiles(cwd, { '.dstack/workflows.yaml': 'workflows:\n  - name: busy\n    provider: bash\n    commands:\n      - echo started\n      - for i in $(seq 1 600); do seq 1 1000; sleep 0.1; done\n' });
  git('add', '-A');
  git('commit', '--quiet', '-m', 'first');
  git('remote', 'add', 'origin', remote);
  git('push', '--quiet', '-u', 'origin', 'main');
  return { cwd, home };
}

/** Sends `signal` twice (the second once the first was taken); how `dstack run` exited, or undefined if it is still up 15 s later. */
async function twoSignals(run: ReturnType<typeof startCli>, signal: NodeJS.Signals) {
  run.kill(signal);
  await waitFor(() => /Stopping…|Aborting…/.test(run.output().stdout), 10_000, 'the first signal to be taken');
  run.kill(signal);
  return Promise.race([run.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
}

describe('the GitHub App on a full disk', () => {
  it('answers a webhook it cannot store 503 naming the folder, and acts on it once GitHub redelivers it after space is back', async () => {
    const sim = await startGithubSim();
    try {
      const { work } = bareRepo({ 'README.md': 'hello\n' });
      await sim.createRepo({ owner: 'acme', name: 'models', path: work, private: true });
      await sim.createInstallation({ account: 'acme' });
      const disk = smallDisk(32);
      const server = await startServer(disk.dir, sim.env());
      sim.setWebhookUrl(`${server.url}/api/github/webhooks`);
      const issue = sim.createIssue({ owner: 'acme', repo: 'models', title: 'full' });

      disk.fill();
      const refused = await sim.comment({ owner: 'acme', repo: 'models', number: issue.number, user: 'alice', permission: 'write', body: '/dstack help' });
      expect(refused.delivery?.status).toBe(503);
      expect(server.output()).toContain(`refused with 503: no space left on the server's data folder ${disk.dir}`);

      disk.free();
      expect((await sim.redeliver(refused.delivery!.id))?.status).toBe(200);
      const isHelp = (c: { body: string; user: { login: string } }) => c.user.login === sim.botLogin && c.body.startsWith('Commands, one per line');
      await waitFor(() => (sim.comments({ owner: 'acme', repo: 'models' }) as unknown as { body: string; user: { login: string } }[]).some(isHelp), 30_000, 'the reply to the redelivered comment');
      expect((sim.comments({ owner: 'acme', repo: 'models' }) as unknown as { body: string; user: { login: string } }[]).filter(isHelp)).toHaveLength(1);
    } finally {
      await sim.close();
    }
  });
});
