import fs from 'node:fs';
import path from 'node:path';
import { isDstackError } from '../shared/errors.js';
import type { JobStatus } from '../shared/job-status.js';
import { jobEnvironment } from './job-env.js';
import type { JobAssignment, JobIO } from './job-io.js';
import { LogStreamer } from './log-streamer.js';
import { watchPorts } from './port-watch.js';
import { bashProvider } from './providers/bash.js';
import { curlProvider } from './providers/curl.js';
import type { Provider, RunningProvider } from './providers/provider.js';
import { pythonProvider } from './providers/python.js';
import { measure, packStream, unpack } from './tar.js';

const PROVIDERS: Record<string, Provider | undefined> = { bash: bashProvider, python: pythonProvider, curl: curlProvider };

export interface JobRunnerOptions {
  /** Where job folders are made; each job's is removed when it ends. */
  workRoot: string;
  /** Seconds between SIGINT and SIGTERM, and again before SIGKILL, when a job is stopped. */
  graceSeconds?: number;
  env?: NodeJS.ProcessEnv;
}

export type StopMode = 'stop' | 'abort';

/**
 * Owns one job's life: check out, fetch dependencies and caches, run the provider, stream its
 * output, save artifacts and caches, and report the end last (after the log is drained).
 */
export class JobRunner {
  private readonly dir: string;
  private readonly streamer: LogStreamer;
  private running: RunningProvider | undefined;
  private stopMode: StopMode | undefined;
  private killTimers: NodeJS.Timeout[] = [];
  private status: JobStatus = 'submitted';

  constructor(private readonly job: JobAssignment, private readonly io: JobIO, private readonly options: JobRunnerOptions) {
    this.dir = path.join(options.workRoot, job.jobId);
    this.streamer = new LogStreamer(io.log, (paused) => (paused ? this.running?.pause() : this.running?.resume()));
  }

  /** Runs the job to its end and returns its final status. */
  async run(): Promise<JobStatus> {
    const work = path.join(this.dir, 'work');
    const home = path.join(this.dir, 'home');
    let exitCode: number | undefined;
    let failure: string | undefined;
    let started = false;
    try {
      this.setStatus('downloading');
      fs.mkdirSync(home, { recursive: true });
      fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
      await this.io.checkout(work);
      for (const dep of await this.io.dependencies()) await unpack(dep.open(), work);
      for (const cache of await this.io.caches()) await unpack(cache.open(), cache.path.startsWith('~') ? home : work);
      if (this.stopMode) return await this.finish(undefined, undefined, false);

      const provider = PROVIDERS[this.job.workflow.provider];
      if (!provider) throw new Error(`provider '${this.job.workflow.provider}' cannot run on this runner yet`);
      const cwd = path.join(work, this.job.workflow.workingDir);
      fs.mkdirSync(cwd, { recursive: true });
      const env = jobEnvironment(this.job, home, this.options.env);
      env.TMPDIR = path.join(this.dir, 'tmp');
      try {
        this.running = await provider({
          job: this.job,
          cwd,
          jobDir: this.dir,
          env,
          output: (d) => this.streamer.write(d),
          note: (line) => this.streamer.note(line),
        });
      } catch (err) {
        if (!isDstackError(err)) throw err;
        failure = err.message;
        this.streamer.note(err.message);
      }
      if (this.running) {
        started = true;
        if (!this.stopMode) this.setStatus('running');
        const ports = watchPorts(this.job.workflow.ports, (port) => this.io.portOpen(port));
        exitCode = await this.running.exited;
        ports.stop();
        this.clearKillTimers();
      }
    } catch (err) {
      await this.streamer.drain().catch(() => {});
      const message = err instanceof Error ? err.message : String(err);
      this.streamer.note(`dstack: ${message}`);
      return this.finish(undefined, `infrastructure error: ${message}`, started, 'aborted');
    }
    return this.finish(exitCode, failure, started);
  }

  /** Stops the job: SIGINT, then SIGTERM and SIGKILL after the grace period; `abort` kills at once. */
  stop(mode: StopMode): void {
    if (this.stopMode === 'abort' || (this.stopMode === 'stop' && mode === 'stop')) return;
    this.stopMode = mode;
    if (mode === 'abort') {
      this.running?.signal('SIGKILL');
      return;
    }
    if (this.status === 'running') this.setStatus('stopping');
    if (!this.running) return;
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
      this.setStatus('uploading');
      try {
        await this.saveAll(work, home, exitCode === 0 && !this.stopMode);
      } catch (err) {
        final = 'failed';
        reason = `saving artifacts failed: ${err instanceof Error ? err.message : String(err)}`;
        this.streamer.note(`dstack: ${reason}`);
      }
    }
    await this.streamer.drain();
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.setStatus(final, { reason, exit_code: exitCode ?? null });
    return final;
  }

  private async saveAll(work: string, home: string, saveCache: boolean): Promise<void> {
    const save = async (base: string, rel: string, put: JobIO['putArtifact'], label: string) => {
      const full = path.join(base, rel);
      if (!fs.existsSync(full)) {
        this.streamer.note(`${label} '${rel}' does not exist; nothing saved`);
        return;
      }
      const size = measure(full);
      const { stream, done } = packStream(base, rel);
      await Promise.all([put(label === 'cache' && base === home ? `~/${rel}` : rel, stream, size), done]);
    };
    for (const a of this.job.workflow.artifacts) await save(work, a, this.io.putArtifact.bind(this.io), 'artifact');
    if (!saveCache) return;
    for (const c of this.job.workflow.cache) {
      if (c.startsWith('~')) await save(home, c === '~' ? '.' : c.slice(2), this.io.putCache.bind(this.io), 'cache');
      else await save(work, c, this.io.putCache.bind(this.io), 'cache');
    }
  }

  private setStatus(status: JobStatus, fields?: { reason?: string | null; exit_code?: number | null }): void {
    this.status = status;
    this.io.setStatus(status, fields);
  }
}
