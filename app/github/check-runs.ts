import { isFinal } from '../../shared/job-status.js';
import type { RunService } from '../run-service.js';
import type { JobRow } from '../store/store.js';
import { handleCheckRunEvent } from './check-runs-actions.js';
import { checkRunOutput, checkRunState, readLogTail } from './check-runs-output.js';
import { UpdateScheduler, type Clock } from './check-runs-scheduler.js';
import { CheckRunsStore } from './check-runs-store.js';
import type { GithubApp } from './github-app.js';
import { runPageLinksOf } from './run-page-links.js';

/** Buttons on a check run (`requested_action` identifiers; GitHub allows 20 characters, labels 20, descriptions 40). */
export const ACTION_STOP = 'dstack-stop';
export const ACTION_TAG_LATEST = 'dstack-tag-latest';

export interface CheckRunsOptions {
  intervalMs?: number;
  clock?: Clock;
  random?: () => number;
}

/**
 * One check run per job of every run the app started, `dstack/WORKFLOW` at the run's commit, kept
 * up to date from the run service's events: queued with the waiting reason, in progress with the
 * log's tail, completed with a conclusion. Requests are coalesced (UpdateScheduler); the final one
 * is owed in the store until it lands, so a restart sends it. Re-run and the buttons are handled
 * in check-runs-actions.ts.
 */
export class CheckRuns {
  readonly store: CheckRunsStore;
  readonly scheduler: UpdateScheduler;
  private readonly service: RunService;
  /** Jobs whose check runs are still to be completed: looked up on every log chunk, so kept here. */
  private readonly live = new Set<string>();
  /** Ports jobs opened (the run service does not keep them). */
  private readonly ports = new Map<string, number[]>();
  private readonly offs: (() => void)[] = [];

  constructor(readonly app: GithubApp, options: CheckRunsOptions = {}) {
    this.service = app.service;
    this.store = new CheckRunsStore(app.server.state.store);
    this.scheduler = new UpdateScheduler((jobId, final) => this.send(jobId, final), {
      intervalMs: options.intervalMs,
      clock: options.clock,
      random: options.random,
      groupOf: (jobId) => String(app.origin(this.service.job(jobId)?.run_name ?? '')?.installationId ?? ''),
      log: (line) => app.server.log(`check run of job ${line}`),
    });
    this.offs.push(
      app.onRunSubmitted(({ view }) => {
        for (const job of view.jobs) {
          this.store.add(job.id, view.run.name);
          this.live.add(job.id);
          // The job as it is now: it may have gone on (even ended) while the run's comment was made.
          this.changed(this.service.job(job.id) ?? job);
        }
      }),
    );
    const onJob = (job: JobRow) => this.live.has(job.id) && this.changed(job);
    const onLog = (jobId: string) => this.live.has(jobId) && this.scheduler.touch(jobId);
    const onPort = (jobId: string, port: number) => {
      if (!this.live.has(jobId)) return;
      this.ports.set(jobId, [...(this.ports.get(jobId) ?? []), port]);
      this.scheduler.touch(jobId);
    };
    this.service.on('job', onJob);
    this.service.on('log', onLog);
    this.service.on('port', onPort);
    this.offs.push(() => {
      this.service.off('job', onJob);
      this.service.off('log', onLog);
      this.service.off('port', onPort);
    });
    this.offs.push(app.on('check_run', (context) => handleCheckRunEvent(this, context)));
    // What a previous server owed GitHub: final updates that had not landed, check runs of jobs still going.
    for (const row of this.store.unfinished()) {
      const job = this.service.job(row.job_id);
      if (!job) continue;
      if (isFinal(job.status)) {
        if (row.final_pending === 0) this.store.owe(job.id);
        this.scheduler.finish(job.id);
      } else {
        this.live.add(job.id);
        this.scheduler.touch(job.id);
      }
    }
  }

  /** Whether no update waits or is in flight. */
  get idle(): boolean {
    return this.scheduler.idle;
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
    this.scheduler.close();
  }

  private changed(job: JobRow): void {
    if (!isFinal(job.status)) return this.scheduler.touch(job.id);
    this.live.delete(job.id);
    this.ports.delete(job.id);
    this.store.owe(job.id);
    this.scheduler.finish(job.id);
    // The run's end changes the buttons of its other jobs' check runs (Stop goes, Tag as latest comes).
    const view = this.service.view(job.run_name);
    if (!isFinal(view.status)) return;
    for (const row of this.store.ofRun(job.run_name)) {
      if (row.job_id === job.id || this.live.has(row.job_id)) continue;
      this.store.owe(row.job_id);
      this.scheduler.finish(row.job_id);
    }
  }

  /** One request: the check run's whole state now (made when it is not yet on GitHub). */
  private async send(jobId: string, final: boolean): Promise<void> {
    const row = this.store.get(jobId);
    const job = this.service.job(jobId);
    const origin = job && this.app.origin(job.run_name);
    if (!row || !job || !origin) return;
    const pending = row.final_pending;
    const view = this.service.view(job.run_name);
    const links = runPageLinksOf(this.app.server.state);
    const runUrl = links?.runUrl(view.run.name);
    const state = checkRunState(job);
    const output = checkRunOutput({
      view,
      job,
      origin,
      tail: readLogTail(this.service, jobId),
      artifacts: this.service.artifactsOfRun(view.run.name).filter((a) => a.job_id === jobId),
      ports: this.ports.get(jobId) ?? [],
      links: { runUrl, artifactUrl: (id, p) => links?.artifactUrl(view.run.name, id, p) },
    });
    const actions = !isFinal(view.status)
      ? [{ label: 'Stop', description: `Stop run ${view.run.name}`.slice(0, 40), identifier: ACTION_STOP }]
      : view.status === 'done'
        ? [{ label: 'Tag as latest', description: 'Tag the run latest: a release'.slice(0, 40), identifier: ACTION_TAG_LATEST }]
        : [];
    const body = {
      owner: origin.repoOwner,
      repo: origin.repoName,
      name: `dstack/${job.workflow}`,
      external_id: job.id,
      ...(runUrl ? { details_url: runUrl } : {}),
      status: state.status,
      ...(state.conclusion ? { conclusion: state.conclusion, completed_at: new Date(job.finished_at ?? Date.now()).toISOString() } : {}),
      ...(job.started_at !== null ? { started_at: new Date(job.started_at).toISOString() } : {}),
      output,
      actions,
    };
    const octokit = await this.app.octokitFor(origin.installationId);
    if (row.check_run_id === null) {
      const { data } = await octokit.rest.checks.create({ ...body, head_sha: origin.sha });
      this.store.setCheckRunId(jobId, data.id);
    } else {
      await octokit.rest.checks.update({ ...body, check_run_id: row.check_run_id });
    }
    if (final) this.store.paid(jobId, pending);
  }
}

/** Check runs for the app's runs (the one line in the app's factory). */
export function attachCheckRuns(app: GithubApp, options?: CheckRunsOptions): CheckRuns {
  const checks = new CheckRuns(app, options);
  app.onClose(() => checks.close());
  return checks;
}
