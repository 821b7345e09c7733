import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openState, type State } from '../../app/state.js';
import { bash, ended, userApi } from '../helpers/api.js';
import { closeAfterTest, tempDir, waitFor } from '../helpers/cli.js';
import { bareRepo } from '../helpers/git-repo.js';
import { createToken, startAgent, startServer } from '../helpers/server.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Faults of the network and of the processes, with a real server, a real agent and real git
 * remotes: what a job's user sees afterwards must be exactly what the job did.
 */

const LINES = 100_000;
/** Prints `line 1` … `line 100000` in batches with pauses, so faults land while it prints. */
const numberedLines = bash('count', [`for b in $(seq 0 99); do seq $((b * 1000 + 1)) $((b * 1000 + 1000)) | sed 's/^/line /'; sleep 0.04; done`]);

async function setup(env: NodeJS.ProcessEnv = {}) {
  const dataDir = tempDir();
  const agentToken = await createToken(dataDir, 'acme', 'agent');
  const userToken = await createToken(dataDir, 'acme', 'user');
  const server = await startServer(dataDir, env);
  // The test reads what the server stored straight from its data folder.
  const state: State = closeAfterTest(openState(dataDir));
  const repo = bareRepo({ 'README.md': 'hi\n' });
  return { dataDir, server, state, repo, agentToken: agentToken.token, api: userApi(server.url, userToken.token) };
}

/** The numbers of the `line N` lines of a job's stored log, in order. */
function numbers(state: State, jobId: string): number[] {
  const out: number[] = [];
  let offset = 0;
  let rest = '';
  for (;;) {
    const chunk = state.service.readLog(jobId, offset);
    if (chunk.length === 0) break;
    offset += chunk.length;
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const m = /^line (\d+)\r?$/.exec(line);
      if (m) out.push(Number(m[1]));
    }
  }
  return out;
}

const every = Array.from({ length: LINES }, (_, i) => i + 1);

describe('faults', () => {
  it('a kill -9 of the agent mid-job: the job ends aborted within 45 s, nothing stays running, and the next agent kills what the job left', async () => {
    const { server, state, repo, agentToken, api } = await setup();
    const workDir = tempDir();
    const marks = tempDir();
    const agent = await startAgent({ url: server.url, token: agentToken, name: 'doomed', workDir });
    const run = await api.submit([bash('long', [`nohup sleep 600 > /dev/null 2>&1 & echo $! > ${marks}/sleep.pid`, 'echo started', 'wait'])], repo);
    await waitFor(() => state.service.readLog(`${run}-0`, 0).includes('started'), 20_000, 'the job to start');
    const killedAt = Date.now();
    await agent.kill();
    const job = await ended(state, `${run}-0`, 45_000);
    expect(Date.now() - killedAt).toBeLessThan(45_000);
    expect(job.status).toBe('aborted');
    expect(job.reason).toMatch(/^agent doomed was lost \(silent for \d+ s\)$/);
    expect(state.service.jobCounts().running ?? 0).toBe(0);
    // The killed agent could not end its job's processes (one that ignores the pty's hangup, as a
    // nohup'd trainer does, lives on); the agent started after it on that machine ends them.
    const sleeper = Number(fs.readFileSync(path.join(marks, 'sleep.pid'), 'utf8'));
    expect(alive(sleeper)).toBe(true);
    const next = await startAgent({ url: server.url, token: agentToken, name: 'doomed', workDir });
    await waitFor(() => !alive(sleeper), 10_000, "the old job's process to be killed");
    expect(next.output()).toContain(`killed what a previous agent's jobs left running: ${run}-0`);
  }, 120_000);

  it('the server killed and restarted mid-job: the agent reconnects, the job goes on, and each of 100,000 lines arrives once', async () => {
    const { dataDir, server, state, repo, agentToken, api } = await setup();
    const agent = await startAgent({ url: server.url, token: agentToken, name: 'steady', workDir: tempDir() });
    const run = await api.submit([numberedLines], repo);
    const jobId = `${run}-0`;
    await waitFor(() => numbers(state, jobId).length > 5000, 30_000, 'the job to print');
    await server.kill();
    await waitFor(() => agent.output().includes('disconnected'), 10_000, 'the agent to notice');
    await startServer(dataDir, {}, server.port);
    const job = await ended(state, jobId);
    expect([job.status, job.agent]).toEqual(['done', 'acme/steady']);
    expect(numbers(state, jobId)).toEqual(every);
  });

  it("the agent's connection cut five times during the job: each of 100,000 lines arrives once", async () => {
    const { server, state, repo, agentToken, api } = await setup();
    const proxy = await tcpProxy(server.port);
    try {
      const agent = await startAgent({ url: proxy.url, token: agentToken, name: 'flaky', workDir: tempDir() });
      const run = await api.submit([numberedLines], repo);
      const jobId = `${run}-0`;
      const connects = () => agent.output().split('\n').filter((l) => /^connected to /.test(l)).length;
      for (let cut = 1; cut <= 5; cut++) {
        const printed = numbers(state, jobId).length;
        await waitFor(() => numbers(state, jobId).length > printed + 1000, 30_000, `lines before cut ${cut}`);
        const before = connects();
        proxy.cut();
        await waitFor(() => connects() > before, 20_000, `the agent to reconnect after cut ${cut}`);
      }
      const job = await ended(state, jobId);
      expect(job.status).toBe('done');
      expect(proxy.cuts).toBe(5);
      expect(numbers(state, jobId)).toEqual(every);
    } finally {
      await proxy.close();
    }
  });

  it('a stop from the server: grace, then kill; the artifacts are still uploaded, and a daemon the job left is killed', async () => {
    const { server, state, repo, agentToken, api } = await setup();
    const marks = tempDir();
    await startAgent({ url: server.url, token: agentToken, name: 'box', workDir: tempDir(), env: { DSTACK_STOP_GRACE_SECONDS: '1' } });
    const job = bash(
      'train',
      [
        'mkdir -p out',
        'echo weights > out/model.bin',
        // A daemon left running, which outlives its shell unless the runner kills its process group.
        `nohup sleep 300 > /dev/null 2>&1 < /dev/null & echo $! > ${marks}/daemon.pid`,
        "trap 'echo got SIGINT; exit 130' INT",
        'echo ready',
        'while true; do sleep 0.1; done',
      ],
      { artifacts: ['out'] },
    );
    const run = await api.submit([job], repo);
    await waitFor(() => state.service.readLog(`${run}-0`, 0).includes('ready'), 20_000, 'the job to be ready');
    await api.stop(run);
    const end = await ended(state, `${run}-0`);
    expect([end.status, end.reason]).toEqual(['stopped', 'stopped by the user']);
    expect(state.service.readLog(`${run}-0`, 0).toString()).toContain('got SIGINT');
    expect(state.service.artifactsOfRun(run)).toMatchObject([{ path: 'out', files: 1 }]);
    const pid = Number(fs.readFileSync(path.join(marks, 'daemon.pid'), 'utf8'));
    await waitFor(() => !alive(pid), 10_000, 'the daemon to be killed');
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
