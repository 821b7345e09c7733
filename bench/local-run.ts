/**
 * Local-run benchmark. Prints JSON:
 * - overhead_s: median wall time of `dstack run` for a one-line bash workflow, minus the same
 *   command run by bash directly (target: under 0.5 s);
 * - output: a job printing 200 MB through the pty, the log store and the terminal (stdout to a
 *   file), against the same command under `script -qfec CMD /dev/null` into a file, the kernel
 *   pty's own floor (target ratio under 1.3), and the CLI's peak memory (target under 200 MB).
 *   `ratio` is the job's own time (from the run's record: started to done, log drained) over the
 *   floor; `command_ratio` is the whole `dstack run`, process start-up included (that fixed cost
 *   is what `overhead` measures).
 * - repository_copy: `dstack run` in git repositories of 1,000 and 10,000 files against `cp -a` of
 *   the same files (target: the copying within 1.3× of it), and a chain of 20 jobs (see repo-copy.ts).
 * Usage: npm run bench [-- --runs N --megabytes M --repeat R --copy-files 1000,10000]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRepoCopy } from './repo-copy.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DSTACK = path.join(ROOT, 'bin/dstack.js');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const runs = arg('runs', 7);
/** `--copy-files 1000,10000` (0 to skip): repositories for the copy section. */
const copyFiles = (process.argv.includes('--copy-files') ? process.argv[process.argv.indexOf('--copy-files') + 1]! : '1000,10000').split(',').map(Number).filter((n) => n > 0);
const megabytes = arg('megabytes', 200);
const repeat = arg('repeat', 3);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-bench-'));
const repo = path.join(work, 'repo');
const home = path.join(work, 'home');
fs.mkdirSync(path.join(repo, '.dstack'), { recursive: true });
// 100-byte lines, as a training loop's output would be, rather than one endless line.
const bigCommand = `yes 'the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog. 0123456' | head -c ${megabytes * 1_000_000}`;
fs.writeFileSync(
  path.join(repo, '.dstack/workflows.yaml'),
  `workflows:\n  - name: one\n    provider: bash\n    commands:\n      - echo hello\n  - name: big\n    provider: bash\n    commands:\n      - ${JSON.stringify(bigCommand)}\n`,
);
const env = { ...process.env, DSTACK_HOME: home, NO_COLOR: '1' };

function timed(cmd: string, args: string[], stdoutFile?: string): { seconds: number; maxRssKb: number } {
  const out = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'ignore';
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { cwd: repo, env, stdio: ['ignore', out, 'pipe'] });
  if (typeof out === 'number') fs.closeSync(out);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [seconds, rss] = r.stderr.toString().trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds: seconds!, maxRssKb: rss! };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

timed(DSTACK, ['run', 'one']); // warm the page cache
const helpTimes: number[] = [];
for (let i = 0; i < runs; i++) helpTimes.push(timed(DSTACK, ['--help']).seconds);
const dstackTimes: number[] = [];
const bashTimes: number[] = [];
for (let i = 0; i < runs; i++) {
  dstackTimes.push(timed(DSTACK, ['run', 'one']).seconds);
  bashTimes.push(timed('bash', ['-c', 'echo hello']).seconds);
}

// Interleaved repeats, medians: a 2-core machine's timings wander by a third from run to run.
const outFile = path.join(work, 'out.txt');
const floors: number[] = [];
const dstacks: number[] = [];
const jobs: number[] = [];
let rss = 0;
let floorBytes = 0;
let dstackBytes = 0;
for (let i = 0; i < repeat; i++) {
  floors.push(timed('script', ['-qfec', bigCommand, '/dev/null'], outFile).seconds);
  floorBytes = fs.statSync(outFile).size;
  const d = timed(DSTACK, ['run', 'big'], outFile);
  dstacks.push(d.seconds);
  const ps = spawnSync(DSTACK, ['ps', '--json'], { cwd: repo, env });
  const job = (JSON.parse(ps.stdout.toString()) as { jobs: { started_at: string; finished_at: string }[] }[])[0]!.jobs[0]!;
  jobs.push((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000);
  rss = Math.max(rss, d.maxRssKb);
  dstackBytes = fs.statSync(outFile).size;
}
const floor = { seconds: median(floors) };
const dstack = { seconds: median(dstacks), maxRssKb: rss };

const copy = benchRepoCopy({ dstack: DSTACK, work, fileCounts: copyFiles, repeat: Math.max(3, repeat), chainRepeat: 2 });

const result = {
  machine: { cpus: os.availableParallelism(), node: process.version },
  // The CLI loads heavy modules only for the commands that use them (target: well under 0.2 s).
  help_median_s: median(helpTimes),
  overhead: {
    runs,
    dstack_run_median_s: median(dstackTimes),
    bash_median_s: median(bashTimes),
    overhead_s: +(median(dstackTimes) - median(bashTimes)).toFixed(3),
    target_s: 0.5,
  },
  output: {
    megabytes,
    repeat,
    script_floor_s: floor.seconds,
    job_s: median(jobs),
    dstack_run_s: dstack.seconds,
    ratio: +(median(jobs) / floor.seconds).toFixed(3),
    command_ratio: +(dstack.seconds / floor.seconds).toFixed(3),
    target_ratio: 1.3,
    dstack_max_rss_mb: Math.round(dstack.maxRssKb / 1024),
    target_rss_mb: 200,
    bytes_through_script: floorBytes,
    bytes_through_dstack: dstackBytes,
  },
  repository_copy: copy,
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
execFileSync('rm', ['-rf', work]);
