import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { RunView } from '../../app/run-service.js';
import type { StopMode } from '../../app/scheduler/scheduler.js';
import { DstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import type { MachineResources } from '../../shared/resources.js';
import { checkIsolation, ConfigFile, DEFAULT_ISOLATION_IMAGE } from '../local/config-file.js';
import { executorIdentity, executorPid, isExecutorAlive } from '../local/executor-identity.js';
import { openLocal, type LocalContext } from '../local/local-context.js';
import type { LocalExecution } from '../local/local-execution.js';
import type { LogPrinter } from '../output/log-printer.js';
import type { ArtifactInfo, ClientRun, DstackClient, LogSink, RunListQuery, SubmitRequest, TagInfo } from './dstack-client.js';

const POLL_MS = 100;
const tick = () => new Promise((r) => setTimeout(r, POLL_MS));

/**
 * Local mode: this machine's state under DSTACK_HOME, opened directly; runs are executed by the
 * `dstack` process that submitted them (or its background process with `-d`).
 */
export class LocalClient implements DstackClient {
  readonly mode = 'local';
  readonly ctx: LocalContext;
  /** The machine's resources, detected when this process submits a run. */
  private machine: MachineResources | undefined;
  private readonly executing = new Map<string, LocalExecution>();
  /** Stops asked for before this process started executing the run. */
  private readonly stopFirst = new Map<string, StopMode>();
  readonly logSource: (jobId: string, offset: number, max: number) => Buffer;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.ctx = openLocal(env);
    this.logSource = (jobId, offset, max) => this.ctx.service.readLog(jobId, offset, max);
  }

  async listRuns(query: RunListQuery): Promise<ClientRun[]> {
    const views = this.ctx.service.listRuns({ live: query.live, limit: query.limit, after: query.after });
    return query.events ? views.map((v) => this.withEvents(v)) : views;
  }

  async getRun(name: string): Promise<ClientRun> {
    return this.withEvents(this.ctx.service.view(name));
  }

  private withEvents(v: RunView): ClientRun {
    return { ...v, events: Object.fromEntries(v.jobs.map((j) => [j.id, this.ctx.service.jobEvents(j.id)])) };
  }

  /** Reads the log files; with `follow`, keeps reading until the run ends. */
  async readLogs(name: string, sink: LogSink, opts: { follow: boolean }): Promise<RunView> {
    const { service } = this.ctx;
    let view = service.view(name);
    const offsets = new Map(view.jobs.map((j) => [j.id, 0]));
    const pump = async () => {
      for (const job of view.jobs) {
        for (;;) {
          const chunk = service.readLog(job.id, offsets.get(job.id)!);
          if (chunk.length === 0) break;
          offsets.set(job.id, offsets.get(job.id)! + chunk.length);
          sink.write(job.id, chunk);
          const wait = sink.backpressure();
          if (wait) await wait;
        }
      }
    };
    for (;;) {
      const finished = isFinal(view.status);
      await pump();
      if (!opts.follow || finished || sink.closed) return view;
      await tick();
      service.reconcile(isExecutorAlive);
      view = service.view(name);
    }
  }

  /** A run this process executes is stopped here; another's gets the signal Ctrl+C would give it. */
  async stop(name: string, mode: StopMode): Promise<void> {
    const execution = this.executing.get(name);
    if (execution) return execution.stop(mode);
    const executor = this.ctx.service.view(name).run.executor;
    const pid = executor && isExecutorAlive(executor) ? executorPid(executor) : undefined;
    // This process is about to run it (Ctrl+C came before its jobs did): stop it once it starts.
    if (pid === process.pid) this.stopFirst.set(name, this.stopFirst.get(name) === 'abort' ? 'abort' : mode);
    // SIGHUP is the signal onStopSignals (commands/run.ts) takes as an abort at once; SIGTERM stops, as Ctrl+C.
    else if (pid) process.kill(pid, mode === 'abort' ? 'SIGHUP' : 'SIGINT');
  }

  async waitForEnd(name: string, ms: number): Promise<RunView | undefined> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      this.ctx.service.reconcile(isExecutorAlive);
      const view = this.ctx.service.view(name);
      if (isFinal(view.status)) return view;
      await tick();
    }
    return undefined;
  }

  async tag(name: string, tag: string): Promise<{ moved?: string }> {
    return this.ctx.service.tag(name, tag);
  }

  async untag(tag: string): Promise<void> {
    this.ctx.service.untag(tag);
  }

  async listTags(): Promise<TagInfo[]> {
    return this.ctx.service.listTags();
  }

  async listArtifacts(ref: string): Promise<{ run: string; artifacts: ArtifactInfo[] }> {
    const view = this.ctx.service.resolveRunRef(ref);
    const artifacts = this.ctx.service.artifactsOfRun(view.run.name);
    return { run: view.run.name, artifacts: artifacts.map((a) => ({ workflow: a.workflow, jobId: a.job_id, path: a.path, files: a.files, bytes: a.bytes })) };
  }

  async openArtifact(run: string, artifact: ArtifactInfo): Promise<Readable> {
    const row = this.ctx.service.artifactsOfRun(run).find((a) => a.job_id === artifact.jobId && a.path === artifact.path);
    if (!row) throw new DstackError('DSTACK_ERR_ARCHIVE', `run ${run} has no artifact '${artifact.path}' any more`);
    return this.ctx.service.openArchive(row.archive);
  }

  async pruneCache(root: string, workflow: string): Promise<number> {
    return this.ctx.service.pruneCache(root, workflow);
  }

  async newRunName(): Promise<string> {
    return this.ctx.service.newRunName();
  }

  async submit(request: SubmitRequest): Promise<RunView> {
    const { ctx } = this;
    const { service } = ctx;
    const [{ detectResources }, { connectDocker }, { removeLeftoverContainers }, { copySource }, { runSourceDir }, { unmetResources }] = await Promise.all([
      import('../../agent/resources.js'),
      import('../../agent/docker/engine.js'),
      import('../local/containers.js'),
      import('../../agent/source-copy.js'),
      import('../local/local-worker.js'),
      import('../../shared/resources.js'),
    ]);
    const config = new ConfigFile(ctx.home).read();
    const isolation = {
      mode: checkIsolation(request.isolation ?? config.isolation ?? 'host'),
      image: request.image ?? config.image ?? DEFAULT_ISOLATION_IMAGE,
    };
    const { plan, runName } = request;
    for (const wf of plan) for (const dep of wf.dependsOn) if (dep.tag) service.taggedJob(dep.workflow, dep.tag);
    const machine = (this.machine = await detectResources());
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
    await copySource(request.root, runSourceDir(ctx.paths.runs, runName));
    const view = service.submit({
      repo: request.root,
      workflow: request.workflow,
      args: request.args,
      runName,
      plan,
      executor: executorIdentity(),
      isolation: JSON.stringify(isolation),
    });
    if (request.detach) this.spawnExecutor(runName, request.root);
    return view;
  }

  /**
   * `dstack run -d`: a background process runs it. What that process says about itself (not the
   * jobs' output, which is in the job logs) goes to a file beside the logs, should it ever fail.
   */
  private spawnExecutor(runName: string, root: string): void {
    const errors = fs.openSync(path.join(this.ctx.paths.logs, `${runName}.executor.log`), 'a');
    const child = spawn(process.execPath, [process.argv[1]!, '__execute', runName], {
      detached: true,
      stdio: ['ignore', 'ignore', errors],
      cwd: root,
      env: process.env,
    });
    fs.closeSync(errors);
    child.unref();
    this.ctx.service.setExecutor(runName, executorIdentity(child.pid));
  }

  async attach(name: string, printer?: LogPrinter, colors = false): Promise<RunView> {
    const { LocalExecution } = await import('../local/local-execution.js');
    if (!this.machine) {
      // The background process of `dstack run -d` takes the run over.
      this.ctx.service.setExecutor(name, executorIdentity());
      this.machine = await (await import('../../agent/resources.js')).detectResources();
    }
    const execution = new LocalExecution(this.ctx, name, this.machine, printer, colors);
    this.executing.set(name, execution);
    const early = this.stopFirst.get(name);
    if (early) execution.stop(early);
    try {
      return await execution.finished;
    } finally {
      this.executing.delete(name);
    }
  }

  sweep(): Promise<void> {
    return this.ctx.sweep();
  }

  close(): void {
    this.ctx.close();
  }
}
