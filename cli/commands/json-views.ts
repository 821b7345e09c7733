import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import type { ClientRun } from '../client/dstack-client.js';
import { iso } from '../output/time.js';

/**
 * The stable `--json` shape of a run (documented in the README). Fields are only ever added.
 */
export function runJson(v: ClientRun) {
  const finished = v.jobs.every((j) => j.finished_at !== null) ? Math.max(...v.jobs.map((j) => j.finished_at!)) : null;
  return {
    name: v.run.name,
    workflow: v.run.workflow,
    status: v.status,
    args: v.run.args,
    tags: v.tags,
    submitted_at: iso(v.run.submitted_at),
    finished_at: iso(finished),
    jobs: v.jobs.map((j) => ({
      id: j.id,
      workflow: j.workflow,
      status: j.status,
      reason: j.reason,
      exit_code: j.exit_code,
      gpus: j.gpus ? j.gpus.split(',').map(Number) : [],
      // The custom provider the job ran ({repo, name, ref, commit}), or null for a built-in one.
      // (The spec is parsed here rather than with the store's jobSpec, so a server's runs do not load the store.)
      provider: (JSON.parse(j.spec) as ResolvedWorkflow).customProvider ?? null,
      submitted_at: iso(j.submitted_at),
      started_at: iso(j.started_at),
      finished_at: iso(j.finished_at),
      // Every status change, with its time and reason, oldest first.
      events: (v.events?.[j.id] ?? []).map((e) => ({ status: e.status, reason: e.reason, at: iso(e.at) })),
    })),
  };
}
