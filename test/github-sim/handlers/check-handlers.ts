import type { RestContext, RestHandlers } from '../rest-handler.js';
import { GithubApiError, unprocessable } from '../sim-errors.js';
import type { SimCheckRun } from '../sim-state.js';

/** GitHub's limit on output.summary and output.text; the sim counts bytes, the stricter reading. */
const MAX_OUTPUT_BYTES = 65_535;
/** One check suite per repository and commit, as GitHub makes for an app. */
function suiteId({ sim, repo }: RestContext, sha: string): number {
  const key = `${repo.id}:${sha}`;
  if (!sim.state.checkSuites.has(key)) sim.state.checkSuites.set(key, sim.state.id());
  return sim.state.checkSuites.get(key)!;
}

/** Applies a create or update body to `run`, with the rules GitHub adds to the schema. */
function apply(run: SimCheckRun, body: any): void {
  for (const field of ['summary', 'text'] as const) {
    const value = body.output?.[field];
    if (typeof value === 'string' && Buffer.byteLength(value) > MAX_OUTPUT_BYTES) {
      throw unprocessable(`Invalid request.\n\nOnly ${MAX_OUTPUT_BYTES} characters are allowed; ${Buffer.byteLength(value)} were supplied.`);
    }
  }
  if (body.name !== undefined) run.name = body.name;
  if (body.details_url !== undefined) run.detailsUrl = body.details_url;
  if (body.external_id !== undefined) run.externalId = body.external_id;
  if (body.started_at !== undefined) run.startedAt = body.started_at;
  if (body.output) run.output = { title: body.output.title ?? run.output.title, summary: body.output.summary ?? run.output.summary, text: body.output.text ?? run.output.text };
  if (body.actions) run.actions = body.actions;
  // A conclusion completes the run, as GitHub documents.
  const status = body.conclusion !== undefined ? 'completed' : (body.status ?? run.status);
  if (status === 'completed' && (body.conclusion ?? run.conclusion) == null) throw unprocessable('Invalid request.\n\nconclusion is required when status is completed');
  run.status = status;
  if (status === 'completed') {
    run.conclusion = body.conclusion ?? run.conclusion;
    run.completedAt = body.completed_at ?? run.completedAt ?? new Date().toISOString();
  } else {
    run.conclusion = null;
    run.completedAt = null;
  }
  run.updates.push(structuredClone(body));
}

function find(ctx: RestContext): SimCheckRun {
  const run = ctx.sim.state.checkRuns.get(Number(ctx.params.check_run_id));
  if (!run || run.repo.toLowerCase() !== ctx.sim.state.fullName(ctx.repo).toLowerCase()) throw new GithubApiError(404, 'Not Found');
  return run;
}

/** Check runs the app makes and updates at a commit of the repository. */
export const checkHandlers: RestHandlers = {
  'checks/create': {
    auth: 'repo',
    permissions: { checks: 'write' },
    async handle(ctx) {
      const { sim, repo, body } = ctx;
      const sha = await sim.store(repo).commit(body.head_sha);
      if (!sha || !sha.startsWith(body.head_sha)) throw unprocessable(`No commit found for SHA: ${body.head_sha}`);
      const run: SimCheckRun = {
        id: sim.state.id(), repo: sim.state.fullName(repo), name: body.name, headSha: sha, status: 'queued', conclusion: null,
        // Unset, GitHub answers the app's URL and an empty external id (webhooks require strings).
        startedAt: new Date().toISOString(), completedAt: null, detailsUrl: sim.objects.base, externalId: '',
        output: { title: null, summary: null, text: null }, actions: [], checkSuiteId: suiteId(ctx, sha), updates: [],
      };
      apply(run, body);
      sim.state.checkRuns.set(run.id, run);
      return { status: 201, body: sim.objects.checkRun(run) };
    },
  },

  'checks/update': {
    auth: 'repo',
    permissions: { checks: 'write' },
    async handle(ctx) {
      const run = find(ctx);
      // Validate on a copy first: a refused update changes nothing.
      const copy = structuredClone(run);
      apply(copy, ctx.body);
      Object.assign(run, copy);
      return { status: 200, body: ctx.sim.objects.checkRun(run) };
    },
  },

  'checks/get': {
    auth: 'repo',
    permissions: { checks: 'read' },
    async handle(ctx) {
      return { status: 200, body: ctx.sim.objects.checkRun(find(ctx)) };
    },
  },
};
