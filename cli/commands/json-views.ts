import type { RunService, RunView } from '../../app/run-service.js';
import { jobSpec } from '../../app/store/store.js';
import { iso } from '../output/time.js';

/**
 * The stable `--json` shape of a run (documented in the README). Fields are only ever added.
 */
export function runJson(v: RunView, service: Pick<RunService, 'jobEvents'>) {
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
      provider: jobSpec(j).customProvider ?? null,
      submitted_at: iso(j.submitted_at),
      started_at: iso(j.started_at),
      finished_at: iso(j.finished_at),
      // Every status change, with its time and reason, oldest first.
      events: service.jobEvents(j.id).map((e) => ({ status: e.status, reason: e.reason, at: iso(e.at) })),
    })),
  };
}
