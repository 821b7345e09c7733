import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { DstackError } from '../shared/errors.js';
import type { JobStatus } from '../shared/job-status.js';
import { PROTOCOL_VERSION, type AppMessage } from '../shared/protocol.js';
import type { AgentSettings } from './agent-settings.js';
import type { RunAs } from './pty-process.js';
import { RepoMirrors } from './checkout/repo-mirrors.js';
import { AgentConnection, type ConnectionState } from './connection.js';
import { connectDocker } from './docker/engine.js';
import { killLeftoverJobs } from './leftover-jobs.js';
import { switchUserProblem } from './pty/script-process.js';
import { RemoteJob } from './remote-job.js';
import { detectResources, type DetectedResources } from './resources.js';

/** Kept with the CLI's (cli/version.ts): agent and CLI ship together. */
export const AGENT_VERSION = '0.1.0';

/** Why a host agent declines a fork's pull request: the user sees it as the job's waiting reason. */
export const UNTRUSTED_ON_HOST =
  "it is a fork's pull request, and this agent runs jobs on its host as its own user (--isolation host), where they could read its token and other repositories: serve such repositories with an agent started with --isolation docker (or start this one with --allow-untrusted-on-host to trust every fork)";

/** What the agent says, one line per event; `tone` lets a terminal colour it. */
export type AgentEvent = { line: string; tone: 'info' | 'good' | 'bad' | 'warn' };

export interface RunnerAgentOptions {
  settings: AgentSettings;
  env?: NodeJS.ProcessEnv;
  print: (event: AgentEvent) => void;
  /** Seconds between SIGINT and SIGTERM (and SIGKILL) when a job is stopped. */
  graceSeconds?: number;
}

/**
 * The runner agent: detects this machine's CPUs, memory and GPUs, keeps one connection to the
 * server, takes the offers it can (never running a job before the server's `start`), runs each as
 * a RemoteJob, and on shutdown stops its jobs as a user's stop would and waits until the server
 * has recorded their ends.
 */
export class RunnerAgent {
  private readonly jobs = new Map<string, RemoteJob>();
  private connection: AgentConnection | undefined;
  private resources: DetectedResources | undefined;
  private shuttingDown = false;
  private dockerEngine: Promise<Docker> | undefined;
  private readonly settled: Promise<string | undefined>;
  private settle!: (refusal: string | undefined) => void;
  private readonly mirrors: RepoMirrors;
  private readonly owner: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly instance = crypto.randomUUID();

  constructor(private readonly options: RunnerAgentOptions) {
    this.env = options.env ?? process.env;
    this.mirrors = new RepoMirrors(options.settings.workDir);
    this.owner = `agent-${crypto.createHash('sha256').update(options.settings.workDir).digest('hex').slice(0, 16)}`;
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  /** Resolves when the agent is done: undefined after a shutdown, or the reason the server refused it for good. */
  get finished(): Promise<string | undefined> {
    return this.settled;
  }

  async start(): Promise<void> {
    const { settings } = this.options;
    const problem = settings.runAs && switchUserProblem();
    if (problem) throw new DstackError('DSTACK_ERR_USAGE', `--run-as ${settings.runAs!.user} cannot switch users here: ${problem}; install util-linux, or leave --run-as out`);
    this.claimWorkDir();
    this.resources = await detectResources(this.env);
    void this.removeLeftoverContainers();
    this.connection = new AgentConnection({
      url: settings.url,
      token: settings.token,
      hello: () => ({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        agent: { name: settings.name, instance: this.instance, version: AGENT_VERSION, labels: settings.labels, resources: this.resources! },
        running: [...this.jobs.values()].flatMap((j) => (j.held ? [j.held] : [])),
      }),
      onMessage: (m) => this.receive(m),
      onState: (s) => this.onState(s),
      urgent: () => [...this.jobs.values()].some((j) => j.held !== undefined),
    });
    this.connection.start();
  }

  /**
   * Stops every job as a user's stop would (SIGINT, grace, SIGTERM, SIGKILL; artifacts still
   * saved), waits until the server has recorded each end or `timeoutMs` passes, then disconnects.
   * Called again (a second Ctrl+C), it kills the jobs at once.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const again = this.shuttingDown;
    this.shuttingDown = true;
    // An offer accepted already gets its `start` or `cancel` at once: a started one is stopped then.
    for (const job of this.jobs.values()) if (job.state !== 'offered') job.stop(again ? 'abort' : 'stop');
    if (again) return;
    if (this.jobs.size > 0) this.options.print({ line: `stopping ${this.jobs.size} job(s)…`, tone: 'warn' });
    const deadline = Date.now() + timeoutMs;
    while (this.jobs.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (this.jobs.size > 0) this.options.print({ line: `giving up on ${[...this.jobs.keys()].join(', ')}: the server has not recorded their end`, tone: 'bad' });
    await this.connection?.close();
    this.settle(undefined);
  }

  /** One agent per work folder: two would remove each other's job folders and mirrors. */
  private claimWorkDir(): void {
    const { workDir } = this.options.settings;
    const pidFile = path.join(workDir, 'agent.pid');
    try {
      fs.mkdirSync(workDir, { recursive: true });
    } catch (err) {
      throw new DstackError('DSTACK_ERR_CONFIG', `cannot make the work folder ${workDir}: ${(err as Error).message}; give another with --work-dir`);
    }
    const other = Number(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : NaN);
    if (Number.isInteger(other) && other !== process.pid && alive(other)) {
      throw new DstackError('DSTACK_ERR_USAGE', `another dstack-agent (pid ${other}) uses ${workDir}; give this one its own --work-dir`);
    }
    fs.writeFileSync(pidFile, `${process.pid}\n`);
    // What a previous agent left (it was killed): its jobs' processes are killed (they would hold
    // GPUs this agent offers as free), and the server ends those jobs when this hello does not list them.
    const killed = killLeftoverJobs(path.join(workDir, 'jobs'));
    if (killed.length > 0) this.options.print({ line: `killed what a previous agent's jobs left running: ${killed.join(', ')}`, tone: 'warn' });
    // Kept trees too: a tree a job had when its agent was killed may be anything.
    for (const leftover of ['jobs', 'spool', 'trees']) fs.rmSync(path.join(workDir, leftover), { recursive: true, force: true });
    // Mirrors (other repositories' code), kept trees and unsent logs are the agent's alone.
    for (const own of ['mirrors', 'spool', 'trees']) {
      fs.mkdirSync(path.join(workDir, own), { recursive: true, mode: 0o700 });
      fs.chmodSync(path.join(workDir, own), 0o700);
    }
    if (this.options.settings.runAs) this.openJobsTo(this.options.settings.runAs);
  }

  /**
   * With --run-as, a job's user must reach its own folder, and nothing else here: the work folder
   * and `jobs/` may be passed through, not listed (each job's folder is made the user's own).
   */
  private openJobsTo(runAs: RunAs): void {
    const { workDir } = this.options.settings;
    const jobs = path.join(workDir, 'jobs');
    fs.mkdirSync(jobs, { mode: 0o711 });
    fs.chmodSync(jobs, 0o711);
    fs.chmodSync(workDir, 0o711);
    try {
      execFileSync('setpriv', ['--reuid', String(runAs.uid), '--regid', String(runAs.gid), '--init-groups', '--', 'test', '-x', jobs], { stdio: 'ignore' });
    } catch {
      throw new DstackError('DSTACK_ERR_CONFIG', `--run-as ${runAs.user}: ${runAs.user} cannot reach ${jobs} (a folder above it is closed to other users); give a --work-dir others may pass through, such as /var/lib/dstack-agent`);
    }
  }

  /** Containers a killed agent of this work folder left behind (best effort: there may be no engine). */
  private async removeLeftoverContainers(): Promise<void> {
    try {
      const docker = await this.docker();
      const { removeContainers, OWNER_LABEL } = await import('./docker/run-container.js');
      await removeContainers(docker, { [OWNER_LABEL]: this.owner }, (jobId) => this.jobs.has(jobId));
    } catch {
      // No engine here: nothing was left in one.
    }
  }

  /** The Docker engine, connected on first use and again after a failure (it may start later). */
  private docker(): Promise<Docker> {
    this.dockerEngine ??= connectDocker(this.env).catch((err: unknown) => {
      this.dockerEngine = undefined;
      throw err;
    });
    return this.dockerEngine;
  }

  private onState(state: ConnectionState): void {
    const { print, settings } = this.options;
    if (state.state === 'connecting') return;
    if (state.state === 'connected') return; // said on the welcome, once the server took the hello
    for (const job of [...this.jobs.values()]) {
      // An offer dies with its connection: the server takes it back (or ends it) when the agent returns without it.
      if (job.state === 'offered') this.jobs.delete(job.id);
      else job.disconnected();
    }
    if (state.state === 'refused') {
      this.settle(state.reason);
      return;
    }
    print({ line: `disconnected from ${settings.url}: ${state.reason}; retrying in ${Math.max(1, Math.round(state.retryInMs / 1000))}s`, tone: 'warn' });
  }

  private receive(message: AppMessage): void {
    const job = message.type === 'welcome' ? undefined : this.jobs.get(message.jobId);
    switch (message.type) {
      case 'welcome':
        return this.welcome(message.forget);
      case 'offer':
        return this.offer(message);
      case 'start':
        if (job?.state === 'offered') {
          job.start();
          this.options.print({ line: `job ${job.id}: started`, tone: 'info' });
          if (this.shuttingDown) job.stop('stop');
        }
        return;
      case 'ack':
        return job?.ack(message.seq, message.final ?? false);
      case 'stop':
        if (job && job.state !== 'offered') {
          this.options.print({ line: `job ${job.id}: ${message.mode === 'abort' ? 'aborting' : 'stopping'} (asked by the server)`, tone: 'warn' });
          job.stop(message.mode);
        }
        return;
      case 'cancel':
        if (!job) return;
        this.options.print({ line: `job ${job.id}: cancelled (${message.reason})`, tone: 'warn' });
        return job.drop();
      case 'token':
        return job?.freshToken(message.token);
    }
  }

  private welcome(forget: string[]): void {
    const { print, settings } = this.options;
    print({ line: `connected to ${settings.url} as ${settings.name}: ${describeResources(this.resources!)}`, tone: 'good' });
    for (const id of forget) {
      const job = this.jobs.get(id);
      if (!job) continue;
      print({ line: `job ${id}: dropped (the server no longer runs it here)`, tone: 'warn' });
      job.drop();
    }
    for (const job of this.jobs.values()) job.resume();
  }

  private offer(offer: Extract<AppMessage, { type: 'offer' }>): void {
    const reject = (reason: string) => {
      this.connection!.send({ type: 'reject', jobId: offer.jobId, reason });
      this.options.print({ line: `job ${offer.jobId}: declined (${reason})`, tone: 'warn' });
    };
    if (this.shuttingDown) return reject('the agent is shutting down');
    if (this.jobs.has(offer.jobId)) return reject('this agent holds that job already');
    const { isolation, allowUntrustedOnHost } = this.options.settings;
    if (offer.source.untrusted && isolation.mode === 'host' && !allowUntrustedOnHost) return reject(UNTRUSTED_ON_HOST);
    const gpus = this.resources!.gpus;
    const indices: number[] = [];
    for (const uuid of offer.gpus) {
      const gpu = gpus.find((g) => g.uuid === uuid);
      if (!gpu) return reject(`GPU ${uuid} is not one of this agent's (${gpus.map((g) => g.uuid).join(', ') || 'it has none'})`);
      indices.push(gpu.index);
    }
    const job = new RemoteJob(offer, indices, {
      send: (m) => this.connection!.send(m),
      workDir: this.options.settings.workDir,
      mirrors: this.mirrors,
      isolation: this.options.settings.isolation,
      owner: this.owner,
      docker: () => this.docker(),
      graceSeconds: this.options.graceSeconds,
      env: this.env,
      runAs: this.options.settings.runAs,
      gone: (j) => {
        if (this.jobs.get(j.id) === j) this.jobs.delete(j.id);
      },
      ended: (j, status, reason) => this.ended(j, status, reason),
    });
    this.jobs.set(offer.jobId, job);
    this.connection!.send({ type: 'accept', jobId: offer.jobId });
    this.options.print({ line: `job ${offer.jobId}: accepted (${offer.runName}, workflow ${offer.workflow.name}${indices.length ? `, GPU ${indices.join(', ')}` : ''})`, tone: 'info' });
  }

  private ended(job: RemoteJob, status: JobStatus, reason: string | null): void {
    const tone = status === 'done' ? 'good' : status === 'stopped' ? 'warn' : 'bad';
    this.options.print({ line: `job ${job.id}: ${status}${reason ? ` (${reason})` : ''}`, tone });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `16 CPUs, 64 GiB, 2× A100 (80 GB)`. */
export function describeResources(r: DetectedResources): string {
  const groups = new Map<string, number>();
  for (const g of r.gpus) {
    const key = `${g.name} (${Math.round(g.memoryMiB / 1024)} GB)`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  const gpus = groups.size === 0 ? 'no GPUs' : [...groups].map(([name, n]) => `${n}× ${name}`).join(', ');
  return `${r.cpus} CPUs, ${Math.round(r.memoryMiB / 1024)} GiB, ${gpus}`;
}
