/**
 * `dstack ps` against history. Prints JSON: for a home with 10,000 finished runs (three jobs each,
 * with their status events; every 50th run tagged) and for an empty home, the median wall time
 * and peak memory of the whole command as typed — `dstack ps`, `dstack ps -n 20` and
 * `dstack ps -a --json > /dev/null` — measured paired and interleaved, and the ratios of the full
 * home to the empty one (target for `ps`: under 1.2; memory of `ps -a --json` flat in history).
 * Usage: npm run bench:ps [-- --runs N --history H]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../app/store/store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DSTACK = path.join(ROOT, 'bin/dstack.js');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const runs = arg('runs', 9);
const history = arg('history', 10_000);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-bench-ps-'));
const empty = path.join(work, 'empty');
const full = path.join(work, 'full');

/** A home as `dstack run` leaves it after `history` runs of a three-job pipeline. */
function fill(home: string, count: number): void {
  const store = new Store(path.join(home, 'dstack.db'));
  const spec = JSON.stringify({ name: 'train', provider: 'bash', spec: { commands: ['python train.py'] }, dependsOn: [], resources: { gpu: { count: 0 } } });
  const start = Date.now() - count * 60_000;
  store.transaction(() => {
    for (let i = 0; i < count; i++) {
      const name = `bench-run-${i}`;
      const at = start + i * 60_000;
      store.insertRun({ name, repo: '/repo', workflow: 'train', args: '--epochs 3', submitted_at: at, executor: null, isolation: null });
      ['prepare', 'train', 'evaluate'].forEach((workflow, position) => {
        const id = `${name}-${position}`;
        store.insertJob({ id, run_name: name, workflow, position, status: 'submitted', spec, submitted_at: at });
        for (const status of ['downloading', 'running', 'uploading', 'done'] as const) store.setJobStatus(id, status, { exit_code: status === 'done' ? 0 : null });
      });
      if (i % 50 === 0) store.setTag('', `v${i}`, name);
    }
  });
  store.close();
}

function measure(home: string, args: string[]): { seconds: number; maxRssMb: number } {
  const t = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', DSTACK, ...args], {
    env: { ...process.env, DSTACK_HOME: home, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`dstack ${args.join(' ')} failed: ${r.stderr}`);
  return { seconds, maxRssMb: Number(r.stderr.toString().trim().split('\n').pop()) / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const filling = Date.now();
fs.mkdirSync(empty, { recursive: true });
new Store(path.join(empty, 'dstack.db')).close();
fill(full, history);
const fillSeconds = (Date.now() - filling) / 1000;

const commands: Record<string, string[]> = { ps: ['ps'], 'ps -n 20': ['ps', '-n', '20'], 'ps -a --json': ['ps', '-a', '--json'] };
const results: Record<string, unknown> = {};
for (const [label, args] of Object.entries(commands)) {
  measure(empty, args); // warm the page cache
  measure(full, args);
  const e: ReturnType<typeof measure>[] = [];
  const f: ReturnType<typeof measure>[] = [];
  for (let i = 0; i < runs; i++) {
    // Paired and interleaved, alternating which goes first, so drift hits both alike.
    if (i % 2 === 0) {
      e.push(measure(empty, args));
      f.push(measure(full, args));
    } else {
      f.push(measure(full, args));
      e.push(measure(empty, args));
    }
  }
  const emptyS = median(e.map((x) => x.seconds));
  const fullS = median(f.map((x) => x.seconds));
  results[label] = {
    empty_s: +emptyS.toFixed(3),
    history_s: +fullS.toFixed(3),
    ratio: +(fullS / emptyS).toFixed(2),
    empty_max_rss_mb: Math.round(median(e.map((x) => x.maxRssMb))),
    history_max_rss_mb: Math.round(median(f.map((x) => x.maxRssMb))),
  };
}
fs.rmSync(work, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ history_runs: history, jobs_per_run: 3, repeats: runs, fill_s: fillSeconds, commands: results }, null, 2) + '\n');
