/**
 * A job's log through a runner agent and the server. Prints JSON: a job printing `--megabytes` MB
 * of numbered lines, run with `dstack run` against a server as typed (its stdout to a file: what
 * the user waits for, from the command's start to its end, the whole log streamed back to it),
 * against the same command under `script -qfec CMD /dev/null` into a file, the kernel pty's own
 * floor, paired and interleaved (target ratio under 1.3). Where remote mode is not built, the run
 * is submitted over the HTTP API and timed from the submit to its end (`via: "api"`).
 * `job_ratio` is the job's own time (running → done, from its status events) over the floor.
 * `cpu_of_all_runs`: CPU-seconds of the server, the agent and the CLI (its git included), over all runs.
 * `raw.stolen_s`: CPU-seconds the hypervisor took from the machine during each timed command (on a
 * shared virtual machine a run that lost seconds is slower for reasons that are not its own).
 * Memory: VmRSS of the server and of the agent sampled every 50 ms throughout, the largest of
 * each, and VmHWM (target under 200 MB each). The stored log's size (`dstack_log_bytes_total`)
 * must equal what the job printed (what `script` wrote).
 * Usage: npm run bench:logs [-- --megabytes 200 --repeat 5 --files 2000]
 */
import fs from 'node:fs';
import path from 'node:path';
import { arg, between, machine, median, round, runAsTyped, serverWithAgent, timed, watchedPairs } from './server-harness.js';

const megabytes = arg('megabytes', 200);
const repeat = arg('repeat', 5);
const files = arg('files', 2000);

// Numbered lines of ~100 bytes, as a training loop prints them, cut at exactly the size asked.
const bytes = megabytes * 1_000_000;
const bigCommand = `seq -f 'step %09.0f loss 0.123456 acc 0.987654 lr 0.000300 the quick brown fox jumps over the lazy dog' 1 ${Math.ceil(bytes / 90)} | head -c ${bytes}`;

const s = await serverWithAgent('dstack-bench-logs-', files, `workflows:\n  - name: big\n    provider: bash\n    commands:\n      - ${JSON.stringify(bigCommand)}\n`);
const outFile = path.join(s.work, 'out.txt');
const logBytes = async () => (await s.api.metric('dstack_log_bytes_total'))['dstack_log_bytes_total'] ?? 0;

/** One run of `big`, as the user runs it: seconds, the job's own seconds, bytes stored and shown. */
async function dstackRun() {
  const before = await logBytes();
  const r = await runAsTyped(s, 'big', outFile);
  return {
    seconds: r.seconds,
    jobSeconds: between(r.view, 'running', 'done'),
    stored: (await logBytes()) - before,
    shown: s.remote.ok ? fs.statSync(outFile).size : 0,
    cliRssMb: r.cliRssMb,
    cliCpuSeconds: r.cliCpuSeconds,
    stolenSeconds: r.stolenSeconds,
  };
}

let floorBytes = 0;
async function floorRun(): Promise<{ seconds: number; stolenSeconds: number }> {
  const t = await timed('script', ['-qfec', bigCommand, '/dev/null'], { cwd: s.work, stdoutFile: outFile });
  floorBytes = fs.statSync(outFile).size;
  return t;
}

const { a: runs, b: floors, cpu, memory } = await watchedPairs(s, repeat, dstackRun, floorRun, 200);

const floor = median(floors.map((f) => f.seconds));
const run = median(runs.map((r) => r.seconds));
const ratio = run / floor;
const stored = runs.map((r) => r.stored);
process.stdout.write(
  JSON.stringify(
    {
      machine: machine(),
      megabytes,
      repeat: runs.length,
      via: s.remote.ok ? 'cli' : 'api',
      ...(s.remote.ok ? {} : { why: s.remote.why }),
      script_floor_s: round(floor),
      dstack_run_s: round(run),
      ratio: round(ratio),
      job_s: round(median(runs.map((r) => r.jobSeconds))),
      job_ratio: round(median(runs.map((r) => r.jobSeconds)) / floor),
      target_ratio: 1.3,
      ratio_met: ratio < 1.3,
      raw: {
        script_s: floors.map((f) => round(f.seconds)),
        dstack_run_s: runs.map((r) => round(r.seconds)),
        job_s: runs.map((r) => round(r.jobSeconds)),
        stolen_s: { script: floors.map((f) => f.stolenSeconds), dstack_run: runs.map((r) => r.stolenSeconds) },
      },
      cpu_of_all_runs: { ...cpu, cli_s: runs.every((r) => r.cliCpuSeconds !== null) ? round(runs.reduce((sum, r) => sum + r.cliCpuSeconds!, 0), 1) : null },
      memory,
      cli_max_rss_mb: runs[0]!.cliRssMb,
      bytes: { printed: floorBytes, stored, shown_by_dstack_run: runs.map((r) => r.shown), met: stored.every((b) => b === floorBytes) },
    },
    null,
    2,
  ) + '\n',
);
