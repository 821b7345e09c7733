import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openState, type State } from '../../app/state.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { bash, ended, userApi } from '../helpers/api.js';
import { closeAfterTest, tempDir, waitFor } from '../helpers/cli.js';
import { gitHttpServer } from '../helpers/git-http.js';
import { bareRepo } from '../helpers/git-repo.js';
import { createToken, startAgent, startServer } from '../helpers/server.js';

/** Real agents with the fake nvidia-smi's GPUs, a real server: which job goes where, and why one waits. */

async function setup() {
  const dataDir = tempDir();
  const agentToken = (await createToken(dataDir, 'acme', 'agent')).token;
  const userToken = (await createToken(dataDir, 'acme', 'user')).token;
  const server = await startServer(dataDir);
  const state: State = closeAfterTest(openState(dataDir));
  const agent = (name: string, gpus?: string, labels?: string[]) => startAgent({ url: server.url, token: agentToken, name, workDir: tempDir(), gpus, labels });
  return { server, state, agent, api: userApi(server.url, userToken), repo: bareRepo({ 'README.md': 'hi\n' }) };
}

const gpus = (count: number, extra: Partial<ResolvedWorkflow['resources']['gpu']> = {}): Partial<ResolvedWorkflow> => ({
  resources: { gpu: { count, ...extra }, interruptible: false },
});

describe('scheduling on runner agents', () => {
  it('packs two one-GPU jobs on one agent, side by side, each on a GPU of its own', async () => {
    const { state, agent, api, repo } = await setup();
    await agent('gpu-box', 'A100:81920,A100:81920');
    const marks = tempDir();
    // Each job waits for the other's mark: both finish only if they run at the same time.
    const job = (me: string, other: string) =>
      bash(me, ['echo "gpu=$CUDA_VISIBLE_DEVICES"', `touch ${marks}/${me}`, `for i in $(seq 1 200); do [ -e ${marks}/${other} ] && exit 0; sleep 0.05; done; exit 1`], gpus(1));
    const first = await api.submit([job('a', 'b')], repo);
    const second = await api.submit([job('b', 'a')], repo);
    const [a, b] = [await ended(state, `${first}-0`), await ended(state, `${second}-0`)];
    expect([a.status, b.status]).toEqual(['done', 'done']);
    const used = [a, b].map((j) => /gpu=(\d)/.exec(state.service.readLog(j.id, 0).toString())![1]);
    expect(used.sort()).toEqual(['0', '1']);
  });

  it('matches GPUs by count, name (inside the model name, any case) and memory, and names the agents while a job waits', async () => {
    const { state, agent, api, repo } = await setup();
    await agent('small-box', 'NVIDIA A100-PCIE-40GB:40960');
    await agent('cpu-1');
    const fits = await api.submit([bash('fits', ['echo gpu=$CUDA_VISIBLE_DEVICES'], gpus(1, { name: 'a100', memoryMiB: 40960 }))], repo);
    expect((await ended(state, `${fits}-0`)).agent).toBe('acme/small-box');

    const big = await api.submit([bash('big', ['true'], gpus(1, { name: 'A100', memoryMiB: 81920 }))], repo);
    const two = await api.submit([bash('two', ['true'], gpus(2, { name: 'A100' }))], repo);
    const h100 = await api.submit([bash('h100', ['true'], gpus(1, { name: 'H100' }))], repo);
    const reason = (run: string) => waitFor(() => state.service.job(`${run}-0`)!.reason?.startsWith('waiting: needs') && state.service.job(`${run}-0`)!.reason, 10_000, 'a waiting reason');
    expect(await reason(big)).toBe('waiting: needs 1× A100 (80GB) (an agent of acme); agents: small-box 1× A100 (40GB), cpu-1 0 GPUs');
    expect(await reason(two)).toBe('waiting: needs 2× A100 (an agent of acme); agents: small-box 1× A100, cpu-1 0 GPUs');
    expect(await reason(h100)).toBe('waiting: needs 1× H100 (an agent of acme); agents: small-box 0× H100, cpu-1 0 GPUs');
    // It keeps waiting (an agent that fits may connect later), and runs when one does.
    await agent('big-box', 'NVIDIA A100-SXM4-80GB:81920,NVIDIA A100-SXM4-80GB:81920');
    expect((await ended(state, `${big}-0`)).agent).toBe('acme/big-box');
    expect((await ended(state, `${two}-0`)).agent).toBe('acme/big-box');
    expect(state.service.job(`${h100}-0`)!.status).toBe('submitted');
  });

  it('gives a job only to an agent with every label it asks for', async () => {
    const { state, agent, api, repo } = await setup();
    await agent('plain');
    const run = await api.submit([bash('fast', ['true'], { resources: { gpu: { count: 0 }, interruptible: false, labels: ['nvme'] } })], repo);
    await waitFor(() => state.service.job(`${run}-0`)!.reason === 'waiting: needs labels nvme (an agent of acme); agents: plain no label nvme', 10_000, 'the waiting reason');
    await agent('disk-box', undefined, ['nvme', 'big']);
    expect((await ended(state, `${run}-0`)).agent).toBe('acme/disk-box');
  });

  it('checks a job out of a repository served over HTTP by git http-backend', async () => {
    const { state, agent, api } = await setup();
    const repo = bareRepo({ 'data.txt': 'over http\n' });
    const git = await gitHttpServer(path.dirname(repo.repoUrl));
    try {
      await agent('box');
      const run = await api.submit([bash('show', ['cat data.txt'])], { repoUrl: `${git.url}/${path.basename(repo.repoUrl)}`, commit: repo.commit });
      const job = await ended(state, `${run}-0`);
      expect(job.status).toBe('done');
      expect(state.service.readLog(job.id, 0).toString()).toContain('over http');
      expect(git.requests()).toBeGreaterThan(0);
    } finally {
      await git.close();
    }
  });
});
