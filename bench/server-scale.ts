/**
 * One `dstack-app` under many agents and jobs. Prints JSON: `--agents` simulated agents connected
 * at once (protocol clients in this process, each a real WebSocket, that accept every offer and at
 * once report `running`, one log chunk and `done`), then `--jobs` no-op jobs submitted over the
 * HTTP API as many runs of `--per-run` independent workflows (a run holds at most 200), with
 * `--concurrency` submits in flight: jobs dispatched per second (offers over the time from the
 * first offer to the last start), the time from the first submit until the server has recorded
 * every job's end (target under 60 s), and the server's largest memory (VmRSS sampled every
 * 100 ms, and VmHWM; target under 500 MB). This process is busy too (it plays every agent), on
 * the same 2 cores: the figures are the server's and the fake agents' together.
 * Usage: npm run bench:scale [-- --agents 500 --jobs 5000 --per-run 100 --concurrency 4]
 */
import os from 'node:os';
import path from 'node:path';
import type { AppMessage } from '../shared/protocol.js';
import { Project } from '../shared/workflow/project.js';
import type { ResolvedWorkflow } from '../shared/workflow/types.js';
import { ProtocolClient } from '../test/helpers/protocol-client.js';
import { Api, arg, cpuSeconds, createToken, MemorySampler, pushedRepo, round, startServer, tempDir, waitFor } from './server-harness.js';

const agents = arg('agents', 500);
const jobs = arg('jobs', 5000);
const perRun = Math.min(200, arg('per-run', 100));
const concurrency = arg('concurrency', 4);

const work = tempDir('dstack-bench-scale-');
const dataDir = path.join(work, 'data');
const repo = pushedRepo(work, 50, 'workflows:\n  - name: noop\n    provider: bash\n    commands:\n      - "true"\n');
const agentToken = createToken(dataDir, 'acme', 'agent');
const userToken = createToken(dataDir, 'acme', 'user');
const server = await startServer(dataDir);
const api = new Api(server.url, userToken);
const sampler = new MemorySampler({ server: server.pid }, 100).start();
const now = () => performance.now();

const counts = { offers: 0, starts: 0, ends: 0, cancels: 0 };
let firstOffer = 0;
let lastStart = 0;
let lastEnd = 0;

/** One simulated agent: takes every offer, and runs each job in no time. */
function simulate(client: ProtocolClient): void {
  const firstSeq = new Map<string, number>();
  client.ws.on('message', (data) => {
    // The client's own record of messages is not needed here; it must not grow with the jobs.
    client.received.length = 0;
    const m = JSON.parse(data.toString()) as AppMessage;
    switch (m.type) {
      case 'offer':
        counts.offers++;
        firstOffer ||= now();
        firstSeq.set(m.jobId, m.firstLogSeq);
        client.send({ type: 'accept', jobId: m.jobId });
        return;
      case 'start':
        counts.starts++;
        lastStart = now();
        client.status(m.jobId, 'running');
        client.log(m.jobId, firstSeq.get(m.jobId) ?? 1, `job ${m.jobId}: nothing to do\r\n`);
        client.status(m.jobId, 'done', { exitCode: 0 });
        return;
      case 'ack':
        if (m.final) {
          counts.ends++;
          lastEnd = now();
          firstSeq.delete(m.jobId);
        }
        return;
      case 'cancel':
        counts.cancels++;
        return;
    }
  });
}

// Agents: connected a few dozen at a time.
const connectStart = now();
const clients: ProtocolClient[] = [];
for (let i = 0; i < agents; i += 50) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(50, agents - i) }, (_, k) => ProtocolClient.connect(server.url, agentToken, { name: `sim-${i + k}`, resources: { cpus: 8, memoryMiB: 32768, gpus: [] } })),
  );
  for (const c of batch) simulate(c);
  clients.push(...batch);
}
const connectSeconds = (now() - connectStart) / 1000;
const connected = (await api.metric('dstack_agents_connected'))['dstack_agents_connected'];

// Runs of `perRun` independent no-op workflows, the last one named as the run's workflow.
const project = Project.load(repo.dir);
const base = project.resolve('noop');
const planOf = (n: number): ResolvedWorkflow[] => Array.from({ length: n }, (_, i) => ({ ...base, name: `noop-${i}` }));
const source = { repoUrl: repo.bare, commit: repo.commit };
const runCount = Math.ceil(jobs / perRun);
const submitLatencies: number[] = [];
const t0 = now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < runCount) {
      const i = next++;
      const size = Math.min(perRun, jobs - i * perRun);
      const s = now();
      await api.submit(planOf(size), source);
      submitLatencies.push(now() - s);
    }
  }),
);
const submitted = now();
await waitFor(() => counts.ends >= jobs, 600_000, `all ${jobs} jobs to end (${counts.ends} so far)`, 50);
const memory = sampler.stop();
const serverCpu = cpuSeconds(server.pid);

// Every run ended done, as the server says.
const listed = await api.json<{ runs: { status: string }[] }>('GET', '/api/runs?limit=500');
const runsDone = listed.runs.filter((r) => r.status === 'done').length;
for (const c of clients) c.close();
await server.stop();

const allDone = (lastEnd - t0) / 1000;
const dispatchSeconds = (lastStart - firstOffer) / 1000;
const serverMb = Math.max(memory.server.max_rss_mb, memory.server.hwm_mb);
const sorted = [...submitLatencies].sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify(
    {
      machine: { cpus: os.availableParallelism(), node: process.version, load_average_1m: round(os.loadavg()[0]!, 2) },
      agents: { simulated: agents, connected_per_server: connected, connect_s: round(connectSeconds, 2) },
      jobs: { count: jobs, runs: runCount, per_run: perRun, submit_concurrency: concurrency },
      submit: { all_submitted_s: round((submitted - t0) / 1000, 2), per_run_p50_ms: round(sorted[Math.floor(sorted.length / 2)]!, 1), per_run_max_ms: round(sorted.at(-1)!, 1) },
      messages: counts,
      dispatched_per_s: round(counts.starts / dispatchSeconds, 1),
      all_done_s: round(allDone, 2),
      target_all_done_s: 60,
      all_done_met: allDone < 60 && runsDone === runCount,
      runs_done: runsDone,
      server_cpu_s: round(serverCpu, 1),
      memory: { ...memory, target_mb: 500, met: serverMb < 500 },
    },
    null,
    2,
  ) + '\n',
);
