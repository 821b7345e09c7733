/**
 * What copying the repository costs a run: `dstack run` of a one-line job in git repositories of
 * N files (realistic sizes, nested folders), beside `cp -a` of exactly the files it copies, paired
 * and interleaved; the same in an empty repository gives the command's fixed cost. A chain of 20
 * one-line jobs shows what each further job of a run costs. Part of bench/local-run's JSON.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface RepoCopyOptions {
  dstack: string;
  work: string;
  fileCounts: number[];
  repeat: number;
  chainRepeat: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const WORKFLOWS = [
  'workflows:',
  '  - name: one',
  '    provider: bash',
  '    commands: [echo hello]',
  ...Array.from({ length: 20 }, (_, i) => [`  - name: c${i + 1}`, '    provider: bash', `    commands: [echo c${i + 1}]`, ...(i > 0 ? [`    depends-on: [c${i}]`] : [])]).flat(),
  '',
].join('\n');

/** A git repository of `count` source-like files: most a few KB, some larger, in nested folders. */
function makeRepo(dir: string, count: number): number {
  fs.mkdirSync(path.join(dir, '.dstack'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.dstack/workflows.yaml'), WORKFLOWS);
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const folder = path.join(dir, `pkg${i % 37}`, `mod${i % 11}`);
    fs.mkdirSync(folder, { recursive: true });
    // Log-normal-ish sizes: median ~2.5 KB, a tail to a few hundred KB.
    const size = Math.min(400_000, Math.round(Math.exp(7.8 + random() * 2.2 * (random() < 0.9 ? 1 : 2))));
    fs.writeFileSync(path.join(folder, `file${i}.py`), Buffer.alloc(size, 97 + (i % 26)));
    bytes += size;
  }
  if (count > 0) {
    execFileSync('git', ['init', '-q'], { cwd: dir });
    execFileSync('git', ['add', '-A'], { cwd: dir });
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', 'commit', '-qm', 'files'], { cwd: dir });
  }
  return bytes;
}

function timed(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): { seconds: number; rssMb: number } {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { seconds, rssMb: Math.round(Number(r.stderr.toString().trim().split('\n').pop()) / 1024) };
}

export function benchRepoCopy(o: RepoCopyOptions): Record<string, unknown> {
  const env = { ...process.env, DSTACK_HOME: path.join(o.work, 'copy-home'), NO_COLOR: '1' };
  const empty = path.join(o.work, 'repo-0');
  makeRepo(empty, 0);
  const out: Record<string, unknown> = {};
  for (const count of o.fileCounts) {
    const repo = path.join(o.work, `repo-${count}`);
    const bytes = makeRepo(repo, count);
    // The floor: `cp -a` of exactly the files a job gets (the repository without .git).
    const files = path.join(o.work, `files-${count}`);
    execFileSync('sh', ['-c', `mkdir -p ${files} && git ls-files -z | xargs -0 cp -a --parents -t ${files} --`], { cwd: repo });
    const dest = path.join(o.work, 'cp-dest');
    const cp = () => {
      const t = timed(o.work, 'cp', ['-a', files, dest], env);
      fs.rmSync(dest, { recursive: true, force: true });
      return t;
    };
    const run = (cwd: string, workflow: string) => timed(cwd, o.dstack, ['run', workflow], env);
    cp();
    run(repo, 'one'); // warm the page cache and the home
    const floors: number[] = [];
    const runs: number[] = [];
    const empties: number[] = [];
    let rss = 0;
    for (let i = 0; i < o.repeat; i++) {
      floors.push(cp().seconds);
      const r = run(repo, 'one');
      runs.push(r.seconds);
      rss = Math.max(rss, r.rssMb);
      empties.push(run(empty, 'one').seconds);
    }
    const chains: number[] = [];
    const emptyChains: number[] = [];
    for (let i = 0; i < o.chainRepeat; i++) {
      chains.push(run(repo, 'c20').seconds);
      emptyChains.push(run(empty, 'c20').seconds);
    }
    const [floor, single, none, chain, emptyChain] = [median(floors), median(runs), median(empties), median(chains), median(emptyChains)];
    out[`files_${count}`] = {
      files: count,
      megabytes: +(bytes / 1e6).toFixed(1),
      cp_a_s: +floor.toFixed(3),
      run_s: +single.toFixed(3),
      empty_repo_run_s: +none.toFixed(3),
      // The whole command against the floor, and the copying alone (the run less the empty repo's).
      ratio: +(single / floor).toFixed(2),
      copy_ratio: +((single - none) / floor).toFixed(2),
      target_copy_ratio: 1.3,
      run_max_rss_mb: rss,
      chain_20_s: +chain.toFixed(3),
      chain_20_over_single_run: +(chain / single).toFixed(2),
      empty_repo_chain_20_s: +emptyChain.toFixed(3),
      // What each job after the first costs beyond a job in an empty repository, as a share of `cp -a`.
      further_job_copy_share: +((chain - emptyChain - (single - none)) / 19 / floor).toFixed(2),
    };
    fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(files, { recursive: true, force: true });
  }
  return out;
}
