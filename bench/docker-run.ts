/**
 * Container start overhead. Prints JSON with, for a one-line `docker` workflow:
 * - runner_job_median_s: the job runner (as a runner agent or `dstack run` uses it) running the
 *   job from submitted to done: copy of the folder, container create, start, logs, removal;
 * - docker_run_median_s: `docker run --rm --init` of the same command in the same image;
 * - ratio: the first over the second (target under 1.3);
 * - dstack_run_median_s: the whole `dstack run` command, process start included, for reference.
 * Needs a Docker engine (DOCKER_HOST) with the image on it (test/fixtures/docker/start.sh builds
 * dstack-test/busybox:1, the default):  npm run bench:docker [-- --image IMAGE --runs N]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDocker } from '../agent/docker/engine.js';
import { detectResources } from '../agent/resources.js';
import { copySource } from '../agent/source-copy.js';
import { Scheduler } from '../app/scheduler/scheduler.js';
import { containerOwner } from '../cli/local/containers.js';
import { openLocal } from '../cli/local/local-context.js';
import { LocalWorker, runSourceDir } from '../cli/local/local-worker.js';
import { Project } from '../shared/workflow/project.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DSTACK = path.join(ROOT, 'bin/dstack.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}

const image = arg('image', 'dstack-test/busybox:1');
const runs = Number(arg('runs', '7'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-bench-docker-'));
const repo = path.join(work, 'repo');
const home = path.join(work, 'home');
fs.mkdirSync(path.join(repo, '.dstack'), { recursive: true });
fs.writeFileSync(path.join(repo, '.dstack/workflows.yaml'), `workflows:\n  - name: one\n    provider: docker\n    image: ${image}\n    commands:\n      - echo hello\n`);
const env = { ...process.env, DSTACK_HOME: home, NO_COLOR: '1' };

function seconds(cmd: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One job through the runner, in this process, as a long-running runner would run it. */
async function runnerJob(ctx: ReturnType<typeof openLocal>, project: Project, docker: ReturnType<typeof connectDocker>): Promise<number> {
  const resources = await detectResources();
  const runName = ctx.service.newRunName();
  const start = process.hrtime.bigint();
  await copySource(repo, runSourceDir(ctx.paths.runs, runName));
  ctx.service.submit({ repo, workflow: 'one', args: '', runName, plan: [project.resolve('one', { runName })], executor: null });
  const worker = new LocalWorker({
    service: ctx.service,
    resources,
    workRoot: ctx.paths.work,
    sourceDir: runSourceDir(ctx.paths.runs, runName),
    repo,
    isolation: { mode: 'host', image },
    owner: containerOwner(home),
    docker: () => docker,
    secrets: () => ({}),
  });
  const scheduler = new Scheduler(ctx.service, { runs: [runName] });
  scheduler.addAgent(worker);
  const view = await scheduler.finished(runName);
  scheduler.close();
  if (view.status !== 'done') throw new Error(`the job ended ${view.status}: ${view.jobs[0]?.reason}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const ctx = openLocal(env);
const project = Project.load(repo);
const docker = connectDocker(env);
await docker;
seconds('docker', ['run', '--rm', '--init', image, 'sh', '-c', 'echo hello']);
await runnerJob(ctx, project, docker);
const dockerTimes: number[] = [];
const runnerTimes: number[] = [];
const cliTimes: number[] = [];
for (let i = 0; i < runs; i++) {
  dockerTimes.push(seconds('docker', ['run', '--rm', '--init', image, 'sh', '-c', 'echo hello']));
  runnerTimes.push(await runnerJob(ctx, project, docker));
  cliTimes.push(seconds(DSTACK, ['run', 'one']));
}
ctx.close();
process.stdout.write(
  JSON.stringify(
    {
      image,
      runs,
      docker_run_median_s: +median(dockerTimes).toFixed(3),
      runner_job_median_s: +median(runnerTimes).toFixed(3),
      ratio: +(median(runnerTimes) / median(dockerTimes)).toFixed(3),
      target_ratio: 1.3,
      dstack_run_median_s: +median(cliTimes).toFixed(3),
    },
    null,
    2,
  ) + '\n',
);
fs.rmSync(work, { recursive: true, force: true });
