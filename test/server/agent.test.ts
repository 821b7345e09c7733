import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArchiveStore } from '../../app/archive-store.js';
import { openState, type State } from '../../app/state.js';
import { statePaths } from '../../app/state-paths.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { listArchive } from '../../agent/tar.js';
import { ended } from '../helpers/api.js';
import { closeAfterTest, tempDir, waitFor } from '../helpers/cli.js';
import { bareRepo } from '../helpers/git-repo.js';
import { AGENT, app, createToken, startAgent, startProcess, startServer } from '../helpers/server.js';
import { workflow } from '../helpers/service.js';

/** A server with an agent token of `acme`, and its state opened here too, to submit runs and read what the agent sent. */
async function serverWithToken(env: NodeJS.ProcessEnv = {}) {
  const dataDir = tempDir();
  const token = await createToken(dataDir, 'acme', 'agent');
  const server = await startServer(dataDir, env);
  const state: State = closeAfterTest(openState(dataDir));
  return { dataDir, token, server, state };
}

/**
 * Submits a run as the server's API would, straight into its store. The server's scheduler looks at
 * the queue when an agent connects, so runs are submitted before the agent starts.
 */
function submit(state: State, runName: string, plan: ResolvedWorkflow[], source: { repoUrl: string; commit: string; patch: string | null }): void {
  state.service.submit({ repo: source.repoUrl, workflow: plan.at(-1)!.name, args: '', runName, plan, executor: null, owner: 'acme', source });
}

function bash(name: string, commands: string[], extra: Partial<ResolvedWorkflow> = {}): ResolvedWorkflow {
  return workflow(name, { spec: { name, provider: 'bash', commands } as ResolvedWorkflow['spec'], ...extra });
}

const logOf = (state: State, jobId: string) => state.service.readLog(jobId, 0).toString();

describe('dstack-agent', () => {
  it('reports its name, labels and GPUs, and runs a job that needs two of them with CUDA_VISIBLE_DEVICES set', async () => {
    const { token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    const need = { gpu: { count: 2, name: 'A100' }, interruptible: false, labels: ['nvme'] } as ResolvedWorkflow['resources'];
    submit(state, 'gpu-run-1', [bash('train', ['echo "gpus=$CUDA_VISIBLE_DEVICES"'], { resources: need })], { ...repo, patch: null });
    const agent = await startAgent({ url: server.url, token: token.token, name: 'box-1', workDir: tempDir(), labels: ['nvme', 'fast'], gpus: 'A100:81920,A100:81920' });
    expect(agent.output()).toMatch(/^connected to http:\/\/\S+ as box-1: \d+ CPUs, \d+ GiB, 2× A100 \(80 GB\)$/m);
    const job = await ended(state, 'gpu-run-1-0');
    expect([job.status, job.agent]).toEqual(['done', 'acme/box-1']);
    expect(logOf(state, job.id)).toContain('gpus=0,1');
    await waitFor(() => agent.output().includes('job gpu-run-1-0: done'), 10_000, 'the agent to say the job is done');
    expect(agent.output()).toContain('job gpu-run-1-0: accepted (gpu-run-1, workflow train, GPU 0, 1)');
  });

  it('runs a job at a commit of a bare repository, applies the run\'s patch, and its log reaches the server\'s log store', async () => {
    const { dataDir, token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'data.txt': 'old line\n', 'keep.txt': 'kept\n' });
    // The patch as the CLI makes it: a change to a tracked file and a new untracked one.
    fs.writeFileSync(path.join(repo.work, 'data.txt'), 'new line\n');
    fs.writeFileSync(path.join(repo.work, 'added.txt'), 'brand new\n');
    execFileSync('git', ['add', '-N', 'added.txt'], { cwd: repo.work });
    const patch = execFileSync('git', ['diff', '--binary'], { cwd: repo.work });
    const key = await new ArchiveStore(statePaths(dataDir).archives).put('patches/patch-run-1.patch', fs.createReadStream(writeTemp(patch)));
    submit(state, 'patch-run-1', [bash('show', ['cat data.txt keep.txt added.txt', 'for i in $(seq 1 3000); do echo "line $i"; done'])], { ...repo, patch: key });
    await startAgent({ url: server.url, token: token.token, name: 'box-2', workDir: tempDir() });
    const job = await ended(state, 'patch-run-1-0');
    expect(job.status).toBe('done');
    const log = logOf(state, job.id);
    expect(log).toContain('new line\r\nkept\r\nbrand new\r\n');
    // Every line once, in order: nothing lost or doubled between the agent's spool and the store.
    const lines = [...log.matchAll(/^line (\d+)\r$/gm)].map((m) => Number(m[1]));
    expect(lines).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
  });

  it('fails a job whose patch does not apply, with git\'s reason', async () => {
    const { dataDir, token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'data.txt': 'old line\n' });
    const bad = 'diff --git a/data.txt b/data.txt\n--- a/data.txt\n+++ b/data.txt\n@@ -1 +1 @@\n-not what is there\n+x\n';
    const key = await new ArchiveStore(statePaths(dataDir).archives).put('patches/bad.patch', fs.createReadStream(writeTemp(Buffer.from(bad))));
    submit(state, 'bad-patch-1', [bash('show', ['cat data.txt'])], { ...repo, patch: key });
    await startAgent({ url: server.url, token: token.token, name: 'box-3', workDir: tempDir() });
    const job = await ended(state, 'bad-patch-1-0');
    expect(job.status).toBe('failed');
    expect(job.reason).toMatch(/^the run's changes do not apply to its commit: .*data\.txt/);
  });

  it('uploads an artifact, which the server stores', async () => {
    const { token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'art-run-1', [bash('make', ['mkdir -p out', 'echo model > out/model.bin', 'echo notes > out/notes.txt'], { artifacts: ['out'] })], { ...repo, patch: null });
    await startAgent({ url: server.url, token: token.token, name: 'box-4', workDir: tempDir() });
    const job = await ended(state, 'art-run-1-0');
    expect(job.status).toBe('done');
    const [artifact] = state.service.artifactsOfRun('art-run-1');
    expect(artifact).toMatchObject({ path: 'out', files: 2 });
    expect((await listArchive(state.service.openArchive(artifact!.archive))).sort()).toEqual(['out/', 'out/model.bin', 'out/notes.txt']);
  });

  it("gives a job its dependency's artifacts and its workflow's cache, downloaded from the server", async () => {
    const { token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    const make = bash('make', ['mkdir -p out ~/.cache/pip', 'echo weights > out/model.bin', 'echo cached > ~/.cache/pip/wheel'], { artifacts: ['out'], cache: ['~/.cache/pip'] });
    const use = bash('use', ['cat out/model.bin'], { dependsOn: [{ workflow: 'make' }] });
    submit(state, 'deps-run-1', [make, use], { ...repo, patch: null });
    const workDir = tempDir();
    const agent = await startAgent({ url: server.url, token: token.token, name: 'box-8', workDir });
    const used = await ended(state, 'deps-run-1-1');
    expect(used.status).toBe('done');
    expect(logOf(state, used.id)).toContain('weights\r\n');
    // The next run of `make` finds its cache where it left it. (The server looks at its queue when
    // an agent connects: this run, submitted behind its back, is taken when the agent comes again.)
    expect(await agent.stop()).toBe(0);
    submit(state, 'deps-run-2', [bash('make', ['cat ~/.cache/pip/wheel'], { cache: ['~/.cache/pip'] })], { ...repo, patch: null });
    await startAgent({ url: server.url, token: token.token, name: 'box-8', workDir });
    const again = await ended(state, 'deps-run-2-0');
    expect(again.status).toBe('done');
    expect(logOf(state, again.id)).toContain('cached\r\n');
  });

  it('fails a job whose artifact the server refuses, with the server\'s reason', async () => {
    const { token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'refused-1', [bash('make', ['mkdir -p out', 'ln -s /etc/passwd out/escape'], { artifacts: ['out'] })], { ...repo, patch: null });
    await startAgent({ url: server.url, token: token.token, name: 'box-5', workDir: tempDir() });
    const job = await ended(state, 'refused-1-0');
    expect(job.status).toBe('failed');
    expect(job.reason).toMatch(/^saving artifacts failed: .*escape/);
  });

  it('keeps a job running while the server restarts, and resends its log from the last ack: no line lost or doubled', async () => {
    const { dataDir, token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'restart-run-1', [bash('tick', ['for i in $(seq 1 80); do echo "tick $i"; sleep 0.05; done'])], { ...repo, patch: null });
    const agent = await startAgent({ url: server.url, token: token.token, name: 'box-7', workDir: tempDir() });
    await waitFor(() => logOf(state, 'restart-run-1-0').includes('tick 5\r\n'), 20_000, 'the job to print');
    await server.kill();
    await waitFor(() => agent.output().includes('disconnected from'), 10_000, 'the agent to notice');
    await startServer(dataDir, {}, server.port);
    const job = await ended(state, 'restart-run-1-0');
    expect([job.status, job.agent]).toEqual(['done', 'acme/box-7']);
    const ticks = [...logOf(state, job.id).matchAll(/^tick (\d+)\r$/gm)].map((m) => Number(m[1]));
    expect(ticks).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    expect(agent.output()).toMatch(/connected to .* as box-7[^]*disconnected from [^]*connected to .* as box-7/);
  });

  it('stops its jobs as a user would on SIGTERM, waits for the server to record the end, and exits 0', async () => {
    const { token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'long-run-1', [bash('wait', ['echo started', 'sleep 600'])], { ...repo, patch: null });
    const agent = await startAgent({ url: server.url, token: token.token, name: 'box-6', workDir: tempDir(), env: { DSTACK_STOP_GRACE_SECONDS: '1' } });
    await waitFor(() => logOf(state, 'long-run-1-0').includes('started'), 20_000, 'the job to start');
    expect(await agent.stop()).toBe(0);
    const job = state.service.job('long-run-1-0')!;
    expect([job.status, job.reason]).toEqual(['stopped', 'stopped by the user']);
  });

  it('takes its options from DSTACK_AGENT_* variables, an option winning over its variable', async () => {
    const { token, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'env-run-1', [bash('hello', ['echo hello'], { resources: { gpu: { count: 0 }, interruptible: false, labels: ['gpu-box'] } as ResolvedWorkflow['resources'] })], { ...repo, patch: null });
    const workDir = tempDir();
    const agent = startProcess([AGENT, '--name', 'from-option'], {
      DSTACK_AGENT_URL: server.url,
      DSTACK_AGENT_TOKEN: token.token,
      DSTACK_AGENT_NAME: 'from-variable',
      DSTACK_AGENT_LABELS: 'gpu-box, other',
      DSTACK_AGENT_WORK_DIR: workDir,
    });
    const job = await ended(state, 'env-run-1-0');
    expect([job.status, job.agent]).toEqual(['done', 'acme/from-option']);
    expect(agent.output()).toContain('as from-option:');
    expect(fs.existsSync(path.join(workDir, 'mirrors'))).toBe(true);
  });

  it('gives one-line errors for bad options and variables, and exits 1', async () => {
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [[], {}, "dstack-agent: error: --url (or DSTACK_AGENT_URL) is required: the server's URL, e.g. https://dstack.example.com\n"],
      [['--url', 'http://x'], {}, "dstack-agent: error: --token-file (or --token, DSTACK_AGENT_TOKEN_FILE, DSTACK_AGENT_TOKEN, the systemd credential dstack-agent-token) is required: an agent token, from 'dstack-app token create --owner OWNER --agent'\n"],
      [['--url', 'ftp://x', '--token', 't'], {}, "dstack-agent: error: --url must be an http:// or https:// URL, got 'ftp://x'; fix it\n"],
      [['--token', 't'], { DSTACK_AGENT_URL: 'nope' }, "dstack-agent: error: DSTACK_AGENT_URL must be an http:// or https:// URL, got 'nope'; fix or unset it\n"],
      [['--url', 'http://x', '--token', 't', '--labels', 'a100,bad label'], {}, "dstack-agent: error: --labels must be labels separated by commas, each letters, digits, `_`, `.` and `-`, got 'a100,bad label'; fix it\n"],
      [['--url', 'http://x', '--token', 't'], { DSTACK_AGENT_ISOLATION: 'vm' }, "dstack-agent: error: DSTACK_AGENT_ISOLATION must be host or docker, got 'vm'; fix or unset it\n"],
      [['--url', 'http://x', '--token', 't', '--name', 'my box'], {}, "dstack-agent: error: --name must be letters, digits, `_`, `.` and `-`, starting with a letter or digit, got 'my box'; fix it\n"],
      [['--url', 'http://x', '--token', 't', '--label', 'a'], {}, "dstack-agent: error: unknown option '--label'\n(Did you mean --labels?)\n"],
    ];
    for (const [args, env, stderr] of cases) {
      const proc = startProcess([AGENT, ...args], { DSTACK_AGENT_WORK_DIR: tempDir(), ...env });
      expect(await proc.exited).toBe(1);
      expect(proc.output()).toBe(stderr);
    }
  });

  it('exits 1 with a clear message when its token is wrong or revoked', async () => {
    const { dataDir, token, server } = await serverWithToken();
    const expected = "dstack-agent: error: the server refused the token (HTTP 401); check it, or create a new one with 'dstack-app token create --agent'\n";
    const wrong = startProcess([AGENT, '--url', server.url, '--token', 'dstack_wrong', '--work-dir', tempDir()], {});
    expect(await wrong.exited).toBe(1);
    expect(wrong.output()).toBe(expected);
    await app(['token', 'revoke', token.id], { DSTACK_DATA_DIR: dataDir });
    const revoked = startProcess([AGENT, '--url', server.url, '--token', token.token, '--work-dir', tempDir()], {});
    expect(await revoked.exited).toBe(1);
    expect(revoked.output()).toBe(expected);
  });
});

function writeTemp(data: Buffer): string {
  const file = path.join(tempDir(), 'data');
  fs.writeFileSync(file, data);
  return file;
}
