import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { connectDocker } from '../../agent/docker/engine.js';
import { removeTree } from '../../agent/remove-tree.js';
import type { Isolation } from '../../agent/job-runner.js';
import { detectResources } from '../../agent/resources.js';
import { copySource } from '../../agent/source-copy.js';
import { Scheduler, type StopMode } from '../../app/scheduler/scheduler.js';
import type { RunView } from '../../app/run-service.js';
import { DstackError } from '../../shared/errors.js';
import { shellJoin } from '../../shared/shell-quote.js';
import { isFinal, type JobStatus } from '../../shared/job-status.js';
import { unmetResources, type MachineResources } from '../../shared/resources.js';
import { Project } from '../../shared/workflow/project.js';
import { ProviderRepos } from '../../shared/workflow/provider-repos.js';
import { checkIsolation, ConfigFile, DEFAULT_ISOLATION_IMAGE } from '../local/config-file.js';
import { containerOwner, removeLeftoverContainers, runIsolation } from '../local/containers.js';
import { executorIdentity, isExecutorAlive } from '../local/executor-identity.js';
import { findRepoRoot, openLocal, type LocalContext } from '../local/local-context.js';
import { LocalWake } from '../local/local-wake.js';
import { LocalWorker, runSourceDir } from '../local/local-worker.js';
import { SecretStore } from '../local/secret-store.js';
import { localSettings } from '../local/settings.js';
import { colorsEnabled, paint, statusColor } from '../output/colors.js';
import { LogPrinter } from '../output/log-printer.js';
import { jobSummary, runTable } from '../output/run-table.js';
import { parseRunArgs } from './run-args.js';

export interface RunOptions {
  detach?: boolean;
  isolation?: string;
  image?: string;
}

export async function runCommand(workflow: string, tokens: string[], opts: RunOptions): Promise<number> {
  // A bad setting is found now, not when the run is stopped.
  localSettings();
  const root = findRepoRoot();
  const project = Project.load(root);
  const closure = project.closure(workflow);
  const variableNames = new Set(closure.flatMap((wf) => Object.keys(project.variablesOf(wf))));
  const parsed = parseRunArgs(tokens, (name) => variableNames.has(name));
  const detach = Boolean(opts.detach || parsed.detach);

  const ctx = openLocal();
  try {
    const { service } = ctx;
    const config = new ConfigFile(ctx.home).read();
    const isolation: Isolation = {
      mode: checkIsolation(parsed.isolation ?? opts.isolation ?? config.isolation ?? 'host'),
      image: parsed.image ?? opts.image ?? config.image ?? DEFAULT_ISOLATION_IMAGE,
    };
    const runName = service.newRunName();
    const secrets = new SecretStore(ctx.home).names().map((s) => s.name);
    const providers = await project.providersFor(closure, new ProviderRepos(ctx.paths.providers));
    const plan = closure.map((name) => project.resolve(name, { args: parsed.args, runName, overrides: parsed.overrides, secrets, providers }));
    for (const wf of plan) for (const dep of wf.dependsOn) if (dep.tag) service.taggedJob(dep.workflow, dep.tag);
    const machine = await detectResources();
    for (const wf of plan) {
      const unmet = unmetResources(wf.resources, machine);
      if (unmet) throw new DstackError('DSTACK_ERR_RESOURCES', `workflow '${wf.name}' ${unmet}; lower 'resources' in the workflow, or run it on a machine that has them`);
    }
    // A run that needs containers finds out now, not halfway, that there is no engine.
    if (plan.some((wf) => wf.provider === 'docker' || (isolation.mode === 'docker' && wf.provider !== 'curl'))) {
      const docker = await connectDocker();
      await removeLeftoverContainers(docker, service, ctx.home);
    }

    // The run gets the folder as it is now: later edits do not leak into it.
    const sourceDir = runSourceDir(ctx.paths.runs, runName);
    await copySource(root, sourceDir);
    const view = service.submit({ repo: root, workflow, args: shellJoin(parsed.args), runName, plan, executor: executorIdentity(), isolation: JSON.stringify(isolation) });
    const colors = colorsEnabled();
    process.stdout.write(runTable([view], colors));

    if (detach) {
      // What the background process says about itself (not the jobs' output, which is in the job
      // logs) goes to a file beside the logs, should it ever fail.
      const errors = fs.openSync(path.join(ctx.paths.logs, `${runName}.executor.log`), 'a');
      const child = spawn(process.execPath, [process.argv[1]!, '__execute', runName], {
        detached: true,
        stdio: ['ignore', 'ignore', errors],
        cwd: root,
        env: process.env,
      });
      fs.closeSync(errors);
      child.unref();
      service.setExecutor(runName, executorIdentity(child.pid));
      process.stdout.write(`\nDetached. Follow with: dstack logs ${runName} -f\n`);
      return 0;
    }
    return await execute(ctx, runName, machine, true);
  } finally {
    ctx.close();
  }
}

/** `dstack run -d` runs here, in a background process of its own. */
export async function executeDetached(runName: string): Promise<number> {
  const ctx = openLocal();
  try {
    ctx.service.setExecutor(runName, executorIdentity());
    return await execute(ctx, runName, await detectResources(), false);
  } finally {
    ctx.close();
  }
}

/** How often a waiting run looks for `dstack` processes that died holding resources. */
const CRASH_CHECK_MS = 5000;

async function execute(ctx: LocalContext, runName: string, machine: MachineResources, attached: boolean): Promise<number> {
  const { service } = ctx;
  const view = service.view(runName);
  const colors = attached && colorsEnabled();
  const color = paint(colors);
  const labels = new Map(view.jobs.map((j) => [j.id, j.workflow]));
  const printer = new LogPrinter(process.stdout, labels, colors, (jobId, offset, max) => service.readLog(jobId, offset, max));
  let docker: Promise<Docker> | undefined;
  const worker = new LocalWorker({
    service,
    resources: machine,
    isolation: runIsolation(view.run),
    owner: containerOwner(ctx.home),
    docker: () => (docker ??= connectDocker()),
    secrets: () => new SecretStore(ctx.home).values(),
    workRoot: ctx.paths.work,
    sourceDir: runSourceDir(ctx.paths.runs, runName),
    repo: view.run.repo,
    graceSeconds: localSettings().stopGraceSeconds,
  });
  const scheduler = new Scheduler(service, { runs: [runName] });
  // Other `dstack` processes on this machine free resources too: they say so through a file, and a
  // process that crashed is noticed by the reconcile that marks its jobs aborted.
  const wake = new LocalWake(ctx.home, () => scheduler.wake());
  const onJobEnd = (job: { status: JobStatus }) => {
    if (isFinal(job.status)) wake.notify();
  };
  service.on('job', onJobEnd);
  const crashCheck = setInterval(() => service.reconcile(isExecutorAlive), CRASH_CHECK_MS);

  if (attached) {
    service.on('log', (jobId, data, offset) => printer.write(jobId, data, offset));
    service.on('port', (jobId, port) => printer.line(color('cyan', `${labels.get(jobId)}: port ${port} is open at http://127.0.0.1:${port}`)));
    service.on('job', (job) => {
      // A job that ended before writing anything (e.g. a dependency failed) says why here.
      if (job.status === 'failed' && job.reason && job.exit_code === null && service.logSize(job.id) === 0) {
        printer.line(color('red', `${job.workflow}: ${job.reason}`));
      }
    });
  }
  let interrupts = 0;
  const onSignal = (mode: StopMode) => () => {
    interrupts++;
    const abort = mode === 'abort' || interrupts > 1;
    if (attached) {
      printer.line(color('yellow', abort ? 'Aborting…' : 'Stopping… (press Ctrl+C again to abort)'));
    }
    scheduler.stop(runName, abort ? 'abort' : 'stop');
  };
  const onInt = onSignal('stop');
  const onTerm = onSignal('abort');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onTerm);
  try {
    scheduler.addAgent(worker);
    const final = await scheduler.finished(runName);
    if (attached) {
      await printer.finish();
      printer.line('\n' + jobSummary(final, colors).trimEnd());
      await printer.finish();
    }
    return final.jobs.every((j) => j.status === 'done') ? 0 : 1;
  } finally {
    clearInterval(crashCheck);
    scheduler.close();
    wake.close();
    service.off('job', onJobEnd);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onTerm);
    await removeTree(path.dirname(runSourceDir(ctx.paths.runs, runName)));
  }
}
