import { isDeepStrictEqual } from 'node:util';
import { DstackError } from '../errors.js';
import { jobPaths } from './job-paths.js';
import type { ResolvedWorkflow } from './types.js';
import { validateWorkflow } from './validate.js';
import { formatPosition, YamlFile } from './yaml-file.js';

/**
 * Checks a resolved workflow made elsewhere (a plan a client sends the server) with the loader's
 * own rules: its spec must be a valid workflow of a built-in provider (validateWorkflow, with
 * positions in the spec as JSON, named `WHERE.spec`), and its name, provider, folders and
 * dependencies must be what the loader makes of that spec (jobPaths). So a hand-made plan can
 * neither break a rule the loader enforces nor say one thing in its spec and run another.
 * Its environment and resources are not compared: `dstack run` adds to them (values, labels).
 */
export function checkResolvedWorkflow(wf: ResolvedWorkflow, where: string): void {
  const file = new YamlFile(`${where}.spec`, JSON.stringify(wf.spec, null, 2));
  const validated = validateWorkflow(file.value, file, []);
  const at = (...keys: (string | number)[]) => formatPosition(file.at(keys));
  if (validated.kind !== 'builtin') {
    throw new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${at('provider')}: a resolved workflow's provider is a built-in one: a custom provider is applied before the run is submitted`);
  }
  const spec = validated.spec;
  const expected: Partial<ResolvedWorkflow> = {
    name: spec.name,
    provider: spec.provider,
    ...jobPaths(spec, at),
    dependsOn: (spec['depends-on'] ?? []).map((item) => {
      const [workflow, tag] = item.split(':') as [string, string | undefined];
      return tag ? { workflow, tag } : { workflow };
    }),
  };
  for (const [key, value] of Object.entries(expected)) {
    const got = wf[key as keyof ResolvedWorkflow];
    if (!isDeepStrictEqual(got, value)) {
      throw new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${where}: '${key}' is ${JSON.stringify(got)}, but its spec makes it ${JSON.stringify(value)}`);
    }
  }
}
