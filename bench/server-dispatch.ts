/**
 * Dispatch latency of the server. Prints JSON:
 * - dispatch: from the server's answer to POST /api/runs to the job's first command running on a
 *   warm `dstack-agent` with a warm mirror (after one warm-up run), p50 and p99 over `--runs`
 *   runs (target p50 under 150 ms, p99 under 500 ms). The command is `date +%s%N`; the bench
 *   reads the stamp from the stored log, on the same machine's clock. The floor is the bench
 *   spawning the same `bash -c 'date +%s%N'`, paired and interleaved. `server_steps_ms` splits the
 *   job's way by its status events (the server's clock, to the millisecond): submitted → downloading
 *   (queue, offer, accept, start), downloading → running (the checkout on the agent: a kept tree
 *   brought to the commit, see agent/checkout/work-trees.ts); the export floor is a fresh tree,
 *   `git archive | tar -x` of the same commit by hand, every tenth run.
 * - metrics: the server's own `dstack_dispatch_latency_seconds` histogram (offer to accept).
 * - command: the whole `dstack run` of a one-line job against a server, as typed, beside
 *   `bash -c` of its command, paired and interleaved (when remote mode is built).
 * The repository is a real git repository of `--files` files pushed to a bare one on disk.
 * Usage: npm run bench:dispatch [-- --runs 200 --files 3000 --command-runs 11]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { arg, DSTACK, eventAt, interleaved, machine, median, percentile, round, serverWithAgent, timed, wallNs } from './server-harness.js';

const runs = arg('runs', 200);
const files = arg('files', 3000);
const commandRuns = arg('command-runs', 11);

const s = await serverWithAgent('dstack-bench-dispatch-', files, 'workflows:\n  - name: stamp\n    provider: bash\n    commands:\n      - date +%s%N\n  - name: one\n    provider: bash\n    commands:\n      - echo hello\n');
const { api, project, repo, source, work, env } = s;

/** One run of `stamp`: ms from the POST's answer to the stamp, and the server's steps. */
async function serverRun(): Promise<{ ms: number; queueMs: number; checkoutMs: number }> {
  const runName = (await api.json<{ name: string }>('POST', '/api/run-names')).name;
  const plan = project.closure('stamp').map((name) => project.resolve(name, { runName }));
  const { name, answeredNs } = await api.submit(plan, source, runName);
  const end = await api.end(name);
  if (end.status !== 'done') throw new Error(`run ${name} ended ${end.status}: ${end.jobs[0]?.reason}`);
  const stamp = /^(\d{19})/m.exec(await api.log(name))?.[1];
  if (!stamp) throw new Error(`run ${name} printed no stamp`);
  const view = await api.run(name);
  const job = view.jobs[0]!.id;
  const at = (status: string) => eventAt(view, job, status) ?? NaN;
  return { ms: Number(BigInt(stamp) - answeredNs) / 1e6, queueMs: at('downloading') - at('submitted'), checkoutMs: at('running') - at('downloading') };
}

/**
 * What the checkout costs the file system here: `git archive | tar -x` of the same commit into a
 * fresh folder, as the agent exports a job's tree (the folder removed after, untimed).
 */
let exports = 0;
async function exportFloor(): Promise<number> {
  const dest = path.join(work, `export-${exports++}`);
  const t = await timed('sh', ['-c', `mkdir ${dest} && git --git-dir ${repo.bare} archive --format=tar ${repo.commit} | tar -x -C ${dest}`]);
  await timed('rm', ['-rf', dest]);
  return t.seconds * 1000;
}

/** The floor: the bench spawning the same command; ms from the spawn to the stamp. */
function floorRun(): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = wallNs();
    const child = spawn('bash', ['-c', 'date +%s%N'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(Number(BigInt(out.trim()) - start) / 1e6));
  });
}

await serverRun(); // the warm-up: the agent's mirror is made, the page cache filled
await floorRun();
const exported: number[] = [];
let i = 0;
const { a: results, b: floor } = await interleaved(
  runs,
  async () => {
    // Every tenth run, the export by hand too: what this machine's file system costs the checkout.
    if (i++ % 10 === 0) exported.push(await exportFloor());
    return serverRun();
  },
  floorRun,
);
const dispatch = results.map((r) => r.ms);
const queue = results.map((r) => r.queueMs);
const checkout = results.map((r) => r.checkoutMs);
const histogram = await api.metric('dstack_dispatch_latency_seconds');

// The whole command as typed, where remote mode is built.
let command: Record<string, unknown> = { via: 'api', why: s.remote.why };
if (s.remote.ok) {
  const typed = async (cmd: string, args: string[]) => (await timed(cmd, args, { cwd: repo.dir, env })).seconds;
  await typed(DSTACK, ['run', 'one']);
  const { a: dstack, b: bash } = await interleaved(commandRuns, () => typed(DSTACK, ['run', 'one']), () => typed('bash', ['-c', 'echo hello']));
  command = {
    via: 'cli',
    runs: commandRuns,
    dstack_run_median_s: round(median(dstack)),
    bash_median_s: round(median(bash)),
    overhead_s: round(median(dstack) - median(bash)),
  };
}

await s.agent.stop();
await s.server.stop();
const p50 = median(dispatch);
const p99 = percentile(dispatch, 99);
process.stdout.write(
  JSON.stringify(
    {
      machine: machine(),
      repository: { files, megabytes: round(repo.bytes / 1e6, 1) },
      dispatch: {
        runs: dispatch.length,
        p50_ms: round(p50, 1),
        p99_ms: round(p99, 1),
        max_ms: round(Math.max(...dispatch), 1),
        floor_runs: floor.length,
        floor_p50_ms: round(median(floor), 2),
        floor_p99_ms: round(percentile(floor, 99), 2),
        server_steps_ms: {
          submitted_to_downloading_p50: median(queue),
          submitted_to_downloading_p99: percentile(queue, 99),
          downloading_to_running_p50: median(checkout),
          downloading_to_running_p99: percentile(checkout, 99),
        },
        // Every tenth run: the same export by hand, for what this machine's file system costs.
        export_floor_runs: exported.length,
        export_floor_p50_ms: round(median(exported), 1),
        export_floor_p99_ms: round(percentile(exported, 99), 1),
        target_p50_ms: 150,
        target_p99_ms: 500,
        met: p50 < 150 && p99 < 500,
      },
      metrics: { dstack_dispatch_latency_seconds: histogram },
      command,
    },
    null,
    2,
  ) + '\n',
);
