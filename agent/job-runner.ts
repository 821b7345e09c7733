import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { isDstackError } from '../shared/errors.js';
import type { JobStatus } from '../shared/job-status.js';
import { injectSecrets } from '../shared/secrets.js';
import type { ResolvedWorkflow } from '../shared/workflow/types.js';
import { connectDocker } from './docker/engine.js';
import { JOB_LABEL, OWNER_LABEL, runContainer } from './docker/run-container.js';
import { handOver } from './hand-over.js';
import { staysInside } from './stays-inside.js';
import { containerEnvironment, hostEnvironment } from './job-env.js';
import type { JobAssignment, JobIO } from './job-io.js';
import { killLeftoverJobs } from './leftover-jobs.js';
import { LogStreamer } from './log-streamer.js';
import { watchPorts } from './port-watch.js';
import type { RunAs } from './pty-process.js';
import { bashProvider } from './providers/bash.js';
import { curlProvider } from './providers/curl.js';
import { dockerProvider } from './providers/docker.js';
import type { ContainerOptions, JobPaths, Provider, ProviderContext, RunningProvider } from './providers/provider.js';
import { pythonProvider } from './providers/python.js';
import { containerScriptCommand, runHostScript, writeJobScript } from './providers/shell-script.js';
import { SecretMasker } from './secret-masker.js';
import { asUser } from './pty/script-process.js';
import { removeTree } from './remove-tree.js';
import { measure, packStream, unpack } from './tar.js';

const execFileAsync = promisify(execFile);

const PROVIDERS: Record<string, Provider | undefined> = { bash: bashProvider, python: pythonProvider, curl: curlProvider, docker: dockerProvider };

/** Errors of getting a job's code that the run's author fixes, not the runner's owner. */
const USER_FAULTS = new Set(['DSTACK_ERR_PATCH', 'DSTACK_ERR_CHECKOUT']);

/** Where a job's folder is mounted in its container. */
const CONTAINER_JOB_DIR = '/dstack';

export interface Isolation {
  /** `host`: bash and python jobs run on this machine; `docker`: every job runs in a container. */
  mode: 'host' | 'docker';
  /** The image for bash and python jobs under `docker` isolation. */
  image: string;
}

export interface JobRunnerOptions {
  /** Where job folders are made; each job's is removed when it ends. */
  workRoot: string;
  /** Seconds between SIGINT and SIGTERM, and again before SIGKILL, when a job is stopped. */
  graceSeconds?: number;
  env?: NodeJS.ProcessEnv;
  isolation?: Isolation;
  /** Labels this runner's containers, so the containers it leaves behind can be found. */
  owner?: string;
  /** The Docker engine, connected on first use (shared by a runner's jobs). */
  docker?: () => Promise<Docker>;
  /** Host jobs run as this user, their folder made theirs (`dstack-agent --run-as`; this process is root). */
  runAs?: RunAs;
}

export type StopMode = 'stop' | 'abort';

/**
 * Owns one job's life: check out, fetch dependencies and caches, run the provider, stream its
 * output, save artifacts and caches, and report the end last (after the log is drained).
 */
export class JobRunner {
  private readonly dir: string;
  private readonly streamer: LogStreamer;
  private readonly masker: SecretMasker;
  private running: RunningProvider | undefined;
  private stopMode: StopMode | undefined;
  private killTimers: NodeJS.Timeout[] = [];
  private status: JobStatus = 'submitted';
  private statusSent: Promise<void> = Promise.resolve();
  /** The user the job's folder was handed over to (`--run-as`, a host job): what it holds is that user's doing. */
  private handedTo: RunAs | undefined;

  constructor(private readonly job: JobAssignment, private readonly io: JobIO, private readonly options: JobRunnerOptions) {
    this.dir = path.join(options.workRoot, job.jobId);
    this.streamer = new LogStreamer(io.log, (paused) => (paused ? this.running?.pause() : this.running?.resume()), job.firstLogSeq);
    this.masker = new SecretMasker(Object.values(job.secrets));
  }

  /** Job output goes through the secret masker before it is sequenced, stored or shown. */
  private output(data: Buffer): void {
    const shown = this.masker.write(data);
    if (shown.length > 0) this.streamer.write(shown);
  }

  /** Runs the job to its end and returns its final status. */
  async run(): Promise<JobStatus> {
    const work = path.join(this.dir, 'work');
    const home = path.join(this.dir, 'home');
    let exitCode: number | undefined;
    let failure: string | undefined;
    let started = false;
    try {
      void this.setStatus('downloading');
      fs.mkdirSync(home, { recursive: true });
      fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
      await this.io.checkout(work);
      // Under --run-as the checkout is the run's author's to shape (a committed link `out` to
      // /etc): root's tar would follow such a link out of the job's folder. The folder is the job
      // user's first, and its dependencies and caches are unpacked as that user.
      const jobUser = this.hostUser(this.job.workflow);
      if (jobUser) await this.handOverTo(jobUser);
      const unpackAs = { runAs: this.handedTo };
      for (const dep of await this.io.dependencies()) await unpack(dep.open(), work, unpackAs);
      for (const cache of await this.io.caches()) await unpack(cache.open(), cache.path.startsWith('~') ? home : work, unpackAs);
      if (this.stopMode) return await this.finish(undefined, undefined, false);

      const provider = PROVIDERS[this.job.workflow.provider];
      if (!provider) throw new Error(`provider '${this.job.workflow.provider}' cannot run on this runner yet`);
      await this.makeFolder(path.join(work, this.job.workflow.workingDir));
      try {
        this.running = await provider(this.context(injectSecrets(this.job.workflow, this.job.secrets)));
        if (this.running.pauseIsFree) this.io.logMayPause?.();
      } catch (err) {
        if (!isDstackError(err)) throw err;
        failure = err.message;
        this.streamer.note(err.message);
      }
      if (this.running) {
        started = true;
        if (this.stopMode) this.signalStop();
        else void this.setStatus('running');
        const ports = watchPorts(this.job.workflow.ports, (port) => this.io.portOpen(port));
        exitCode = await this.running.exited;
        ports.stop();
        this.clearKillTimers();
      }
    } catch (err) {
      await this.streamer.drain();
      const message = err instanceof Error ? err.message : String(err);
      this.streamer.note(`dstack: ${message}`);
      // The run's own code is at fault (a patch that does not apply, a commit never pushed): the
      // job failed, as a failing command would. Anything else is the machine's doing.
      if (isDstackError(err) && USER_FAULTS.has(err.code)) return this.finish(undefined, message, started, 'failed');
      return this.finish(undefined, `infrastructure error: ${message}`, started, 'aborted');
    }
    return this.finish(exitCode, failure, started);
  }

  /** What a provider needs: paths and environment for where the job runs, and how to start it there. */
  private context(workflow: ResolvedWorkflow): ProviderContext {
    const isolation = this.options.isolation ?? { mode: 'host', image: '' };
    const inContainer = this.inContainer(workflow);
    const hostPaths: JobPaths = { jobDir: this.dir, cwd: path.join(this.dir, 'work', workflow.workingDir), home: path.join(this.dir, 'home') };
    const boxPaths: JobPaths = {
      jobDir: CONTAINER_JOB_DIR,
      cwd: path.posix.join(CONTAINER_JOB_DIR, 'work', workflow.workingDir),
      home: `${CONTAINER_JOB_DIR}/home`,
    };
    const paths = inContainer ? boxPaths : hostPaths;
    const env = inContainer ? containerEnvironment(this.job, boxPaths, workflow.env) : hostEnvironment(this.job, hostPaths, workflow.env, this.options.env);
    const runAs = this.hostUser(workflow);
    if (runAs) Object.assign(env, { USER: runAs.user, LOGNAME: runAs.user });
    const container = async (o: ContainerOptions) => {
      const docker = await (this.options.docker ?? connectDocker)();
      return runContainer({
        docker,
        ...o,
        env,
        workdir: boxPaths.cwd,
        binds: [`${this.dir}:${CONTAINER_JOB_DIR}`],
        resources: workflow.resources,
        gpus: this.job.gpus,
        ports: workflow.ports,
        labels: { [JOB_LABEL]: this.job.jobId, [OWNER_LABEL]: this.options.owner ?? 'dstack' },
        output: (d) => this.output(d),
      });
    };
    const ctx: ProviderContext = {
      job: this.job,
      workflow,
      isolation: inContainer ? 'docker' : 'host',
      paths,
      hostJobDir: this.dir,
      env,
      output: (d) => this.output(d),
      note: (line) => this.streamer.note(line),
      container,
      shell: async (lines) => {
        writeJobScript(this.dir, lines, workflow.runArgs);
        if (!inContainer && !runAs) return runHostScript(this.dir, hostPaths.cwd, ctx.env, (d) => this.output(d));
        if (runAs) {
          // Again: what was written since (the script, the python on PATH) becomes the user's too.
          await this.handOverTo(runAs);
          // The pty's state beside the job folders (a folder the user cannot list), not in the job's own.
          return runHostScript(this.dir, hostPaths.cwd, ctx.env, (d) => this.output(d), { runAs, stateDir: path.dirname(this.dir) });
        }
        return container({ image: (workflow.spec as { image?: string }).image ?? isolation.image, entrypoint: containerScriptCommand(CONTAINER_JOB_DIR), cmd: [] });
      },
    };
    return ctx;
  }

  private async handOverTo(runAs: RunAs): Promise<void> {
    await handOver(this.dir, runAs);
    this.handedTo = runAs;
  }

  /** Makes a folder in the job's; once it is the job user's, as that user (a committed link on the way leads root's mkdir nowhere). */
  private async makeFolder(dir: string): Promise<void> {
    if (!this.handedTo) {
      fs.mkdirSync(dir, { recursive: true });
      return;
    }
    const relative = path.relative(this.dir, dir);
    const [file, ...args] = asUser(this.handedTo, ['mkdir', '-p', '--', relative]);
    await execFileAsync(file!, args, { cwd: this.dir, env: { ...process.env, LC_ALL: 'C' } }).catch((err: { stderr?: string }) => {
      throw new Error(`cannot make the folder ${relative}: ${String(err.stderr ?? err).trim()}`);
    });
  }

  /** The user a host job runs as (`--run-as`); none for a job in a container. */
  private hostUser(workflow: ResolvedWorkflow): RunAs | undefined {
    return this.inContainer(workflow) ? undefined : this.options.runAs;
  }

  private inContainer(workflow: ResolvedWorkflow): boolean {
    return workflow.provider === 'docker' || (this.options.isolation ?? { mode: 'host' }).mode === 'docker';
  }

  /** Stops the job: SIGINT, then SIGTERM and SIGKILL after the grace period; `abort` kills at once. */
  stop(mode: StopMode): void {
    if (this.stopMode === 'abort' || (this.stopMode === 'stop' && mode === 'stop')) return;
    this.stopMode = mode;
    if (this.status === 'running' && mode === 'stop') void this.setStatus('stopping');
    this.signalStop();
  }

  /** Signals the provider for the stop asked for; called again once a provider that was starting (e.g. pulling) has started. */
  private signalStop(): void {
    if (!this.running || !this.stopMode) return;
    if (this.stopMode === 'abort') {
      this.clearKillTimers();
      this.running.signal('SIGKILL');
      return;
    }
    if (this.killTimers.length > 0) return;
    const grace = (this.options.graceSeconds ?? 10) * 1000;
    this.running.signal('SIGINT');
    this.killTimers.push(setTimeout(() => this.running?.signal('SIGTERM'), grace));
    this.killTimers.push(setTimeout(() => this.running?.signal('SIGKILL'), grace * 2));
  }

  private clearKillTimers(): void {
    for (const t of this.killTimers) clearTimeout(t);
    this.killTimers = [];
  }

  private async finish(exitCode: number | undefined, failure: string | undefined, started: boolean, forced?: JobStatus): Promise<JobStatus> {
    const work = path.join(this.dir, 'work');
    const home = path.join(this.dir, 'home');
    let final: JobStatus =
      forced ??
      (this.stopMode === 'abort' ? 'aborted' : this.stopMode === 'stop' ? 'stopped' : failure || exitCode !== 0 ? 'failed' : 'done');
    let reason =
      failure ??
      (this.stopMode === 'abort' ? 'aborted by the user' : this.stopMode === 'stop' ? 'stopped by the user' : exitCode ? `exit code ${exitCode}` : null);
    // Seed 000: artifacts are saved at the end of every job that started, stopped or failed too.
    if (started && final !== 'aborted') {
      void this.setStatus('uploading');
      try {
        await this.saveAll(work, home, exitCode === 0 && !this.stopMode);
      } catch (err) {
        final = 'failed';
        reason = `saving artifacts failed: ${err instanceof Error ? err.message : String(err)}`;
        this.streamer.note(`dstack: ${reason}`);
      }
    }
    const rest = this.masker.end();
    if (rest.length > 0) this.streamer.write(rest);
    const log = await this.streamer.drain();
    if (log.failed > 0) {
      // The job's end is still reported (what it did stands), but never as if its log were whole.
      const lost = `log incomplete: ${log.failed} of ${log.sent} chunk(s) could not be stored (${log.error instanceof Error ? log.error.message : String(log.error)})`;
      reason = reason ? `${reason}; ${lost}` : lost;
    }
    // What the job started in a session of its own (a setsid'd daemon) is not in its process
    // group: found by the JOB_ID it inherited, so nothing it left runs on in the tree handed on.
    killLeftoverJobs(path.dirname(this.dir), (id) => id === this.job.jobId);
    await this.io.releaseCheckout?.(work).catch(() => {});
    await removeTree(this.dir);
    await this.setStatus(final, { reason, exit_code: exitCode ?? null });
    return final;
  }

  private async saveAll(work: string, home: string, saveCache: boolean): Promise<void> {
    // Where the job is kept from what this process may read (another user, a container), a path
    // it names is saved only if it stays in the job's folder.
    const confined = this.options.runAs !== undefined || this.inContainer(this.job.workflow);
    /** Packs `base/rel` and hands it on as `stored` (the path as the workflow names it). */
    const save = async (base: string, rel: string, stored: string, put: JobIO['putArtifact'], label: string) => {
      // A job may have put a link in place of its folder: tar would follow it out of the job.
      if (!(await fsp.lstat(base).then((st) => st.isDirectory(), () => false))) {
        this.streamer.note(`${label} '${stored}' not saved: ${path.basename(base)} is no longer a folder`);
        return;
      }
      const full = path.join(base, rel);
      // The folders on the way are the job's: a link among them (`ln -s /etc/dstack-agent out`,
      // then `out/token`) would have this process read what the job may not. Refused here with a
      // reason, before it is measured (or even said to exist); under --run-as tar itself runs as
      // the job's user (setpriv), which holds even where a process of that user swaps in a link
      // after this look (measure could then count sizes there, never read a byte). A container's
      // processes are gone once it has ended.
      if (confined && !staysInside(base, full)) {
        this.streamer.note(`${label} '${stored}' not saved: it leads out of the job's folder through a link`);
        return;
      }
      if (!fs.existsSync(full)) {
        this.streamer.note(`${label} '${stored}' does not exist; nothing saved`);
        return;
      }
      const size = await measure(full);
      const { stream, done } = packStream(base, rel, this.handedTo);
      await Promise.all([put(stored, stream, size), done]);
    };
    for (const a of this.job.workflow.artifacts) await save(work, a, a, (...args) => this.io.putArtifact(...args), 'artifact');
    if (!saveCache) return;
    for (const c of this.job.workflow.cache) {
      // `~/…` caches live in the job's home; the rest in its copy of the repository.
      const [base, rel] = c.startsWith('~') ? [home, c === '~' ? '.' : c.slice(2)] : [work, c];
      await save(base, rel, c, (...args) => this.io.putCache(...args), 'cache');
    }
  }

  /** Sends statuses one after another, in order; `run` resolves once the last has gone out. */
  private setStatus(status: JobStatus, fields?: { reason?: string | null; exit_code?: number | null }): Promise<void> {
    this.status = status;
    this.statusSent = this.statusSent.then(() => this.io.setStatus(status, fields));
    return this.statusSent;
  }
}
