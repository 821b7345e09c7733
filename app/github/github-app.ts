import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { EmitterWebhookEventName } from '@octokit/webhooks';
import type { Context, Probot, ProbotOctokit } from 'probot';
import { DstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import type { RunService, RunView } from '../run-service.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import { bodyLimit } from '../server/body-limit.js';
import type { DstackServer } from '../server/server.js';
import type { JobRow } from '../store/store.js';
import { commentHandler, readPullHeadOnArrival } from './comment-handler.js';
import type { GithubSettings } from './github-settings.js';
import { GithubRuns, type GithubRunRequest } from './github-runs.js';
import { GithubStore, type GithubRunOrigin } from './github-store.js';
import { handlePush } from './push-handler.js';
import { RepoPermissions } from './repo-permission.js';
import { RunCommentUpdater, runCommentBody } from './run-comment.js';

/** Where GitHub sends webhooks (Probot's default path). */
export const WEBHOOKS_PATH = '/api/github/webhooks';

/** The largest webhook delivery GitHub sends (its documented cap on payloads). */
const MAX_DELIVERY_BYTES = 25 * 1024 * 1024;

/** Deliveries are remembered this long: GitHub redelivers only recent ones. */
const DELIVERIES_KEPT_MS = 14 * 24 * 60 * 60 * 1000;
/** A delivery's body is acted on once in this long, whatever its delivery id (a signed body replayed). */
const BODIES_KEPT_MS = 24 * 60 * 60 * 1000;

export type WebhookName = EmitterWebhookEventName;
/** A webhook's handler: runs after the delivery was answered and recorded, once per delivery id. */
export type WebhookHandler<E extends WebhookName = WebhookName> = (context: Context<E>) => Promise<void>;

/** A run the app started, with where it came from: what check runs plug into. */
export interface RunSubmitted {
  view: RunView;
  origin: GithubRunOrigin;
}

/** A run tagged from a comment (`/dstack tag RUN TAG`); a handler that throws makes the reply say why. */
export interface RunTagged {
  runName: string;
  tag: string;
  /** The run that had the tag before, when it moved. */
  moved?: string;
  origin: GithubRunOrigin | undefined;
  installationId: number;
  repository: { owner: string; name: string; id: number };
  octokit: ProbotOctokit;
}

/** Links of the server's run page, when there is one (app/github/run-page*.ts sets it). */
export type RunPageUrl = (runName: string) => string | undefined;

/**
 * The GitHub App inside `dstack-app`: Probot's webhook middleware at /api/github/webhooks on the
 * server's express app, and the small surface other parts of app/github/ attach to (check runs,
 * releases, the run page) without editing this file:
 *
 * - `octokitFor(installationId)`, `appOctokit()`: authenticated clients (Probot's, with retries);
 * - `on(event, handler)`: a webhook handler (e.g. `check_run`), run after the answer, once per delivery;
 * - `onArrival(event, read)`, `arrival(context)`: what is read from GitHub as a delivery arrives, before it waits;
 * - `onRunSubmitted(listener)`: every run the app starts, with its origin (repository, commit);
 * - `onTagged(handler)`: `/dstack tag` (releases);
 * - `origin(runName)`: where a run came from, or undefined for a CLI run;
 * - `startRun(request)`: starts a run as a comment does (a re-run at the same commit);
 * - `setRunPageUrl(fn)`: links for the run comment's table.
 *
 * The run service knows nothing of this: the app listens to its events.
 */
export class GithubApp {
  readonly store: GithubStore;
  readonly runs: GithubRuns;
  /** Users' roles on repositories, those without write access remembered for a minute. */
  readonly permissions = new RepoPermissions();
  readonly service: RunService;
  private readonly submitted = new Set<(event: RunSubmitted) => void | Promise<void>>();
  private readonly tagged = new Set<(event: RunTagged) => Promise<void>>();
  private runPageUrl: RunPageUrl = () => undefined;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly closers: (() => void)[] = [];
  /** Deliveries being handled now, by id: a redelivery meanwhile is not taken twice. */
  private readonly inFlight = new Set<string>();
  private readonly work = new Set<Promise<void>>();
  private readonly comments: RunCommentUpdater;
  private readonly onJob: (job: JobRow) => void;
  private readonly pruneTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly server: DstackServer,
    readonly probot: Probot,
    readonly settings: GithubSettings,
    dataDir: string,
  ) {
    this.service = server.state.service;
    this.store = new GithubStore(server.state.store);
    this.runs = new GithubRuns(this.service, this.store, dataDir);
    this.comments = new RunCommentUpdater(
      (runName, final) => this.editRunComment(runName, final),
      (runName) => isFinal(this.service.view(runName).status),
      (line) => server.log(line),
    );
    // Every run of the app with a comment has it kept up to date; runs of the CLI (no origin) are
    // looked up once. A run whose comment is still being made is not remembered: announce() touches
    // it once the comment exists.
    const known = new Map<string, boolean>();
    this.onJob = (job) => {
      let ours = known.get(job.run_name);
      if (ours === undefined) {
        const origin = this.store.origin(job.run_name);
        ours = origin?.replyCommentId != null;
        if (!origin || ours) known.set(job.run_name, ours);
      }
      if (!ours) return;
      this.comments.touch(job.run_name);
      if (isFinal(this.service.view(job.run_name).status)) known.delete(job.run_name);
    };
    this.service.on('job', this.onJob);
    for (const origin of this.store.unfinishedReplies()) this.comments.touch(origin.runName);
    this.store.pruneDeliveries(Date.now() - DELIVERIES_KEPT_MS);
    this.pruneTimer = setInterval(() => {
      try {
        this.store.pruneDeliveries(Date.now() - DELIVERIES_KEPT_MS);
      } catch (err) {
        // Pruning waits for the next hour (a full disk, a busy database): nothing is lost meanwhile.
        this.server.storage.failed(err);
        this.server.log(`GitHub: could not prune old deliveries: ${errorText(err)}`);
      }
    }, 60 * 60 * 1000).unref();
    // The agent's token for a run's code: minted per run's repository, read-only, never kept.
    server.gitCredentials.provide(async (run) => {
      const origin = this.store.origin(run.name);
      return origin ? this.repositoryToken(origin.installationId, origin.repoId) : undefined;
    });
    this.onArrival('issue_comment', (context) => readPullHeadOnArrival(this, context as Context<'issue_comment'>));
    this.on('issue_comment', commentHandler(this));
    this.on('push', (context) => handlePush(this, context));
    this.on('installation', async (context) => {
      server.log(`GitHub App ${context.payload.action} on ${(context.payload.installation.account as { login?: string } | null)?.login ?? 'an account'} (installation ${context.payload.installation.id})`);
    });
  }

  /** An Octokit authenticated as one installation (the account the app is installed on). */
  octokitFor(installationId: number): Promise<ProbotOctokit> {
    return this.probot.auth(installationId);
  }

  /** An Octokit authenticated as the app itself (JWT), for the app's own endpoints. */
  appOctokit(): Promise<ProbotOctokit> {
    return this.probot.auth();
  }

  /**
   * A token for one repository's contents, read-only, from GitHub (it expires within the hour):
   * what an agent fetches the code of a run with. Never stored, never logged.
   */
  async repositoryToken(installationId: number, repoId: number): Promise<string> {
    const octokit = await this.appOctokit();
    const { data } = await octokit.rest.apps.createInstallationAccessToken({ installation_id: installationId, repository_ids: [repoId], permissions: { contents: 'read' } });
    return data.token;
  }

  /**
   * Handles a webhook event after the delivery was answered: each delivery id acts once (the
   * store remembers them), and deliveries of one repository are handled one after another, in the
   * order they came; one stored and not handled when the server stopped is handled at its next
   * start. `event` is a name (`check_run`) or a name with its action (`check_run.rerequested`).
   * Returns what removes the handler.
   */
  on<E extends WebhookName>(event: E, handler: WebhookHandler<E>): () => void {
    const entry = { event: event as string, handler: handler as unknown as WebhookHandler };
    this.handlers.push(entry);
    return () => {
      const i = this.handlers.indexOf(entry);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  private readonly handlers: { event: string; handler: WebhookHandler }[] = [];

  /**
   * Sets what is read from GitHub the moment a delivery of `event` arrives, before it waits its
   * turn in its repository's queue (a pull request's head when the comment came): kept with the
   * delivery, so that a replay after a restart uses the same, and given to handlers by `arrival()`.
   */
  onArrival(event: WebhookName, read: (context: Context) => Promise<unknown>): void {
    this.readers.set(event, read);
  }

  /** What was read when this delivery arrived (`onArrival`); throws what the read threw. */
  arrival<T>(context: Context<WebhookName>): Promise<T | undefined> {
    return (this.arrivals.get(context) ?? Promise.resolve(undefined)) as Promise<T | undefined>;
  }

  private readonly readers = new Map<string, (context: Context) => Promise<unknown>>();
  private readonly arrivals = new WeakMap<object, Promise<unknown>>();

  /**
   * Called for every verified delivery (Probot's `onAny`), before GitHub is answered: stores it
   * (payload included, until it is handled), starts its arrival read and queues its handlers, then
   * returns. A delivery id seen before, or a body seen in the last day under another id, is ignored.
   */
  receive(context: Context): void {
    if (this.closed) return;
    const action = (context.payload as { action?: string }).action;
    const payload = JSON.stringify(context.payload);
    const outcome = this.inFlight.has(context.id) ? 'seen' : this.record(context, action, payload);
    if (outcome !== 'new') {
      this.server.log(`GitHub delivery ${context.id} (${context.name}) ${outcome === 'seen' ? 'seen before' : 'has the body of an earlier delivery'}: ignored`);
      return;
    }
    const handlers = this.handlersOf(context.name, action);
    if (handlers.length === 0) return this.store.deliveryHandled(context.id);
    this.read(context, undefined);
    this.enqueue(context.id, context.payload, handlers, async () => context);
  }

  /**
   * Stores a new delivery before it is answered. A full data folder answers 503 (Probot's middleware
   * takes an error's `status`), so that GitHub shows it as failed and it can be redelivered once
   * there is room, rather than answer 200 for what was never kept.
   */
  private record(context: Context, action: string | undefined, payload: string): 'new' | 'seen' | 'same-body' {
    try {
      return this.store.recordDelivery(
        { id: context.id, event: action ? `${context.name}.${action}` : context.name, name: context.name, payload, digest: crypto.createHash('sha256').update(payload).digest('hex') },
        Date.now() - BODIES_KEPT_MS,
      );
    } catch (err) {
      if (!this.server.storage.failed(err)) throw err;
      const noSpace = Object.assign(this.server.storage.error(), { status: 503 });
      this.server.log(`GitHub delivery ${context.id} (${context.name}) refused with 503: ${noSpace.message}`);
      throw noSpace;
    }
  }

  /**
   * Acts on the deliveries stored and not handled when the server last stopped (answered, then
   * lost to a crash), in the order they came, before any new one: called once every handler is on.
   */
  resume(): void {
    for (const d of this.store.pendingDeliveries()) {
      const payload = d.payload as { action?: string; installation?: { id?: number } };
      const handlers = this.handlersOf(d.name, payload.action);
      if (handlers.length === 0) {
        this.store.deliveryHandled(d.id);
        continue;
      }
      this.server.log(`GitHub delivery ${d.id} (${d.name}) was not handled before the server stopped: handling it now`);
      this.enqueue(d.id, d.payload, handlers, async () => {
        const { Context } = await import('probot');
        const installationId = payload.installation?.id;
        const octokit = installationId === undefined ? await this.probot.auth() : await this.probot.auth(installationId);
        const context = new Context({ id: d.id, name: d.name, payload: d.payload } as never, octokit, this.probot.log.child({ name: 'event', id: d.id })) as unknown as Context;
        this.read(context, d.arrival);
        return context;
      });
    }
  }

  private handlersOf(name: string, action: string | undefined): WebhookHandler[] {
    return this.handlers.filter((h) => h.event === name || h.event === `${name}.${action}`).map((h) => h.handler);
  }

  /** Starts the delivery's arrival read at once (or takes the one stored), and keeps what it gives. */
  private read(context: Context, stored: unknown): void {
    const reader = this.readers.get(context.name);
    let reading: Promise<unknown>;
    if (stored !== undefined) reading = Promise.resolve(stored);
    else if (reader) {
      reading = reader(context).then((value) => {
        if (value !== undefined && !this.closed) this.store.setArrival(context.id, value);
        return value;
      });
      // The one case handled here: a failed read, which the handler that awaits it (`arrival()`)
      // reports; until then it must not count as an unhandled rejection.
      reading.catch(() => undefined);
    } else return;
    this.arrivals.set(context, reading);
  }

  /** Queues a delivery's handlers behind its repository's earlier deliveries; marks it handled once they ran. */
  private enqueue(id: string, payload: unknown, handlers: WebhookHandler[], contextOf: () => Promise<Context>): void {
    this.inFlight.add(id);
    const repoId = (payload as { repository?: { id?: number } }).repository?.id;
    const key = repoId === undefined ? 'app' : `repo:${repoId}`;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(async () => {
      let context: Context;
      try {
        context = await contextOf();
      } catch (err) {
        this.server.log(`GitHub delivery ${id}: could not be handled now (${errorText(err)}); it is tried again at the next start`);
        return false;
      }
      for (const handler of handlers) {
        try {
          await handler(context);
        } catch (err) {
          this.server.log(`GitHub ${context.name} delivery ${id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        }
      }
      return true;
    });
    const done = next.then((handled) => {
      this.inFlight.delete(id);
      this.work.delete(done);
      if (this.queues.get(key) === done) this.queues.delete(key);
      if (!handled || this.closed) return;
      // The queue's next delivery chains on this one: it must not reject. Not marked handled (a
      // full disk), the delivery is acted on again at the next start, where keyed runs start once.
      try {
        this.store.deliveryHandled(id);
      } catch (err) {
        this.server.storage.failed(err);
        this.server.log(`GitHub delivery ${id}: handled, but could not be marked so (${errorText(err)}); it is looked at again at the next start`);
      }
    });
    this.queues.set(key, done);
    this.work.add(done);
  }

  /**
   * Work a handler leaves running after it returns, so as not to hold its repository's queue (a
   * reply to a user without permission): settled() waits for it too; a failure is logged.
   */
  background(work: Promise<void>): void {
    const logged = work.catch((err: unknown) => {
      this.server.storage.failed(err);
      this.server.log(`GitHub: work left running by a handler failed: ${errorText(err)}`);
    });
    this.work.add(logged);
    void logged.finally(() => this.work.delete(logged));
  }

  /** Every run the app starts, after it is submitted (check runs are made from here). Returns what removes it. */
  onRunSubmitted(listener: (event: RunSubmitted) => void | Promise<void>): () => void {
    this.submitted.add(listener);
    return () => this.submitted.delete(listener);
  }

  /** `/dstack tag RUN TAG` after the run was tagged (releases). A handler that throws makes the reply say why. */
  onTagged(handler: (event: RunTagged) => Promise<void>): () => void {
    this.tagged.add(handler);
    return () => this.tagged.delete(handler);
  }

  setRunPageUrl(fn: RunPageUrl): void {
    this.runPageUrl = fn;
  }

  /** Where this server takes webhooks, for the log line at start. */
  webhooksUrl(address: AddressInfo): string {
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}${WEBHOOKS_PATH}`;
  }

  /**
   * Development: relays webhooks from a smee.io channel (WEBHOOK_PROXY_URL) to this server, as
   * Probot does; smee-client is an optional dependency, loaded only then.
   */
  async proxyWebhooks(source: string, address: AddressInfo): Promise<{ close(): void }> {
    let SmeeClient: new (options: { source: string; target: string; logger: Pick<Console, 'info' | 'error'> }) => { start(): Promise<{ close(): void }> | { close(): void } };
    try {
      ({ SmeeClient } = await import(String('smee-client')));
    } catch {
      throw new DstackError('DSTACK_ERR_CONFIG', "WEBHOOK_PROXY_URL needs smee-client: run 'npm install smee-client' in the dstack folder, or unset it");
    }
    const client = new SmeeClient({ source, target: this.webhooksUrl(address), logger: { info: (...a: unknown[]) => this.server.log(a.join(' ')), error: (...a: unknown[]) => this.server.log(a.join(' ')) } });
    return client.start();
  }

  /** Where a run came from, or undefined for a run the CLI submitted. */
  origin(runName: string): GithubRunOrigin | undefined {
    return this.store.origin(runName);
  }

  /**
   * Starts a run as `/dstack run` does (workflows read at `request.sha`), tells `onRunSubmitted`
   * listeners, and, for a run of a pull request or issue, replies with the run's comment.
   */
  async startRun(octokit: ProbotOctokit, request: GithubRunRequest): Promise<RunView> {
    const view = await this.runs.start(octokit, request);
    await this.announce(octokit, view);
    return view;
  }

  /**
   * The run a delivery's command or workflow (`key`, as in GithubRunRequest) started before the
   * server stopped, announced again (its comment only if none was recorded; the listeners, which
   * take a run twice as once); undefined when it started none. What makes a delivery replayed
   * after a restart (GithubApp.resume) start each of its runs once: a run and its key are stored
   * in one transaction (GithubRuns.submit), so either the run exists and is found here, or it was
   * never stored and is started now.
   */
  async startedBefore(octokit: ProbotOctokit, key: string): Promise<RunView | undefined> {
    const runName = this.store.runOfDeliveryKey(key);
    if (runName === undefined) return undefined;
    const view = this.service.view(runName);
    this.server.log(`run ${runName} (${view.run.workflow}) was started by ${key} before the server stopped: not started again`);
    await this.announce(octokit, view, true);
    return view;
  }

  /**
   * After a run is submitted: its comment (when it has an issue), then the listeners. `again`: the
   * run of a replayed delivery, whose comment is made only if none was recorded (one posted and
   * not yet recorded at a kill is posted twice: GitHub has no way to make a comment once).
   */
  async announce(octokit: ProbotOctokit, view: RunView, again = false): Promise<void> {
    const origin = this.store.origin(view.run.name)!;
    if (!again) this.server.log(`run ${view.run.name} (${view.run.workflow}) submitted from GitHub ${origin.repoOwner}/${origin.repoName}@${origin.sha.slice(0, 7)} by ${origin.sender}`);
    if (origin.issueNumber !== null && origin.replyCommentId === null) {
      try {
        const { data } = await octokit.rest.issues.createComment({
          owner: origin.repoOwner,
          repo: origin.repoName,
          issue_number: origin.issueNumber,
          body: runCommentBody(view, origin, { runUrl: this.runPageUrl(view.run.name) }),
        });
        this.store.setReply(view.run.name, data.id);
        this.comments.touch(view.run.name, true);
      } catch (err) {
        this.server.log(`could not comment on run ${view.run.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const listener of this.submitted) {
      try {
        await listener({ view, origin: this.store.origin(view.run.name)! });
      } catch (err) {
        this.server.log(`a listener of run ${view.run.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
  }

  /** Tells the `onTagged` handlers; the first error is thrown, for the reply. */
  async tell(event: RunTagged): Promise<void> {
    for (const handler of this.tagged) await handler(event);
  }

  /** Stops a run (as `dstack stop` does); false when it had ended already. */
  stopRun(runName: string): boolean {
    if (isFinal(this.service.view(runName).status)) return false;
    this.server.scheduler.stop(runName, 'stop');
    return true;
  }

  /** Resolves once the queued webhook work is done (tests; a stopping server). */
  async settled(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.work.size > 0 || !this.comments.idle) && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.work]), new Promise((r) => setTimeout(r, 100))]);
    }
  }

  /** Something attached (check runs, releases) to close with the app. */
  onClose(close: () => void): void {
    this.closers.push(close);
  }

  async close(): Promise<void> {
    await this.settled(5000);
    this.closed = true;
    clearInterval(this.pruneTimer);
    this.comments.close();
    this.service.off('job', this.onJob);
    for (const close of this.closers.splice(0).reverse()) close();
  }

  private async editRunComment(runName: string, final: boolean): Promise<void> {
    const origin = this.store.origin(runName);
    if (!origin?.replyCommentId) return;
    const view = this.service.view(runName);
    const octokit = await this.octokitFor(origin.installationId);
    await octokit.rest.issues.updateComment({
      owner: origin.repoOwner,
      repo: origin.repoName,
      comment_id: origin.replyCommentId,
      body: runCommentBody(view, origin, { runUrl: this.runPageUrl(runName) }),
    });
    if (final) this.store.setReplyFinal(runName);
  }
}

/**
 * Starts the GitHub App on a server: Probot from the settings, its webhook middleware mounted on
 * the server's express app. Probot is imported here, so a server without the app never loads it.
 */
export async function startGithubApp(server: DstackServer, settings: GithubSettings, dataDir: string): Promise<GithubApp> {
  const { Probot, createNodeMiddleware } = await import('probot');
  const probot = new Probot({
    appId: settings.appId,
    privateKey: settings.privateKey,
    secret: settings.webhookSecret,
    baseUrl: settings.apiUrl,
    logLevel: settings.logLevel as 'info',
  });
  let app: GithubApp | undefined;
  const middleware = await createNodeMiddleware(
    (p) => {
      p.onAny(async (context) => app?.receive(context as unknown as Context));
    },
    { probot, webhooksPath: WEBHOOKS_PATH },
  );
  app = new GithubApp(server, probot, settings, dataDir);
  (await import('./run-page-links.js')).attachRunPageLinks(app);
  (await import('./check-runs.js')).attachCheckRuns(app);
  (await import('./releases.js')).attachReleases(app);
  app.resume();
  // GitHub sends at most 25 MB in a delivery: a longer one declared is answered 413 at once, unread,
  // and one sent without a length (chunked) is read only that far. Probot's middleware takes the
  // body read here (a string) rather than buffer the stream whole, whatever its size.
  server.app.post(
    WEBHOOKS_PATH,
    bodyLimit(MAX_DELIVERY_BYTES, 'the delivery', 'GitHub sends at most 25 MB'),
    express.text({ type: () => true, limit: MAX_DELIVERY_BYTES }),
    (err: { type?: string; message?: string }, _req: Request, res: Response, next: NextFunction) => {
      if (err.type !== 'entity.too.large') return next(err);
      res.set('connection', 'close');
      res.status(413).json({ error: `the delivery is over the ${MAX_DELIVERY_BYTES}-byte limit; GitHub sends at most 25 MB`, code: 'DSTACK_ERR_USAGE' });
    },
  );
  server.app.use((req, res, next) => {
    void middleware(req, res, next);
  });
  return app;
}

/** A reply's text for an error: the DstackError's own message (file:line:col), or what GitHub said. */
export function errorText(err: unknown): string {
  if (err instanceof DstackError) return err.message;
  const status = (err as { status?: number }).status;
  return status ? `GitHub answered ${status}: ${(err as Error).message}` : `internal error: ${err instanceof Error ? err.message : String(err)}`;
}
