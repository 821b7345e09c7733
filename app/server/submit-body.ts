import { z } from 'zod';
import { DstackError } from '../../shared/errors.js';
import { resolvedWorkflow } from '../../shared/protocol.js';
import { SECRET_NAME } from '../../shared/secrets.js';
import { checkResolvedWorkflow } from '../../shared/workflow/check-resolved-workflow.js';
import { agentLabel } from '../../shared/workflow/schema.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { checkInput } from './check-input.js';

/** A run name as shared/run-names.ts makes them. */
export const RUN_NAME = /^[a-z]+-[a-z]+-\d+$/;

/**
 * What the scheduler reads of a job's resources: checked here, since a plan comes from a client and
 * the scheduler serves every owner's runs.
 */
const resources = z.looseObject({
  cpu: z.number().positive().optional(),
  memoryMiB: z.number().nonnegative().optional(),
  gpu: z.looseObject({ count: z.number().int().nonnegative(), name: z.string().optional(), memoryMiB: z.number().nonnegative().optional() }),
  shmSizeMiB: z.number().nonnegative().optional(),
  interruptible: z.boolean(),
  labels: z.array(agentLabel).max(50).optional(),
});

/** `POST /api/runs`: a run the CLI resolved from the repository's workflow files. */
export const submitBody = z.strictObject({
  name: z.string().regex(RUN_NAME, 'a run name such as slim-octopus-3 (POST /api/run-names gives one)'),
  /** The repository, as its remote URL without credentials: what its caches are kept under. */
  repo: z.string().min(1).max(2000),
  workflow: z.string().min(1).max(200),
  /** `${{ run.args }}`, shell-joined, as `dstack ps` shows it. */
  args: z.string().max(100_000),
  plan: z.array(resolvedWorkflow).min(1).max(200),
  source: z.strictObject({
    repoUrl: z.string().min(1).max(2000),
    commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a full commit id'),
    /** The id `POST /api/patches` answered, or null when there is nothing to apply. */
    patch: z.string().nullable(),
  }),
  /** Values of the secrets the plan refers to. */
  secrets: z.record(z.string().regex(SECRET_NAME, 'a secret name'), z.string().max(1 << 20)).default({}),
});

export type SubmitBody = z.infer<typeof submitBody>;

/**
 * The body of `POST /api/runs`, checked: its shape, then that the plan is one a run can have
 * (each workflow as the loader would have made it, see checkResolvedWorkflow; the workflow last,
 * names unique, in-run dependencies before their dependants, resources and labels the scheduler
 * can read).
 */
export function parseSubmitBody(value: unknown): SubmitBody {
  const body = checkInput(submitBody, value, 'run');
  const seen = new Set<string>();
  body.plan.forEach((wf: ResolvedWorkflow, i) => {
    const where = `plan.${i}`;
    if (seen.has(wf.name)) throw usage(`invalid run: workflow '${wf.name}' is twice in the plan`);
    for (const dep of wf.dependsOn) {
      if (!dep.tag && !seen.has(dep.workflow)) throw usage(`invalid run: '${wf.name}' depends on '${dep.workflow}', which is not before it in the plan`);
    }
    checkResolvedWorkflow(wf, where);
    checkInput(resources, wf.resources, `run: '${where}.resources'`);
    seen.add(wf.name);
  });
  if (body.plan.at(-1)!.name !== body.workflow) throw usage(`invalid run: the plan must end with workflow '${body.workflow}'`);
  return body;
}

function usage(message: string): DstackError {
  return new DstackError('DSTACK_ERR_USAGE', message);
}
