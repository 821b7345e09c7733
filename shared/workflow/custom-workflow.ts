import { DstackError } from '../errors.js';
import { closest } from '../suggest.js';
import { interpolate, type InterpolationContext } from './interpolate.js';
import type { ProviderSource } from './provider-repos.js';
import { CUSTOM_OWN_KEYS, PROVIDER_NAMES, providerFile, type CustomSpec, type ProviderFile } from './schema.js';
import { validateWorkflow } from './validate.js';
import { formatPosition, YamlFile, type Path } from './yaml-file.js';

/** Which provider a job ran, exactly: recorded on the job and shown by `ps --json`. */
export interface CustomProviderRecord {
  repo: string;
  name: string;
  ref?: string;
  commit: string;
}

/** A provider file, read and checked. */
export interface LoadedProvider {
  source: ProviderSource;
  file: YamlFile;
  definition: ProviderFile;
}

const invalid = (message: string) => new DstackError('DSTACK_ERR_WORKFLOW_INVALID', message);

/** Reads and checks `providers/NAME.yaml`; mistakes name the provider file, line and column. */
export function loadProvider(source: ProviderSource): LoadedProvider {
  const file = new YamlFile(source.label, source.text);
  const parsed = providerFile.safeParse(file.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.code === 'unrecognized_keys' ? file.keyAt([...(issue.path as (string | number)[]), issue.keys[0]!]) : file.at(issue.path as (string | number)[]);
    const what = issue.code === 'unrecognized_keys' ? `unknown key '${issue.keys[0]}'` : `invalid '${issue.path.join('.') || 'file'}': ${issue.message}`;
    throw invalid(`${formatPosition(at)}: ${what} in provider '${source.name}'; a provider file has 'help', 'inputs' and 'workflow'`);
  }
  const body = parsed.data.workflow;
  if (typeof body.provider === 'object' && body.provider !== null) {
    throw invalid(
      `${formatPosition(file.at(['workflow', 'provider']))}: provider '${source.name}' uses another custom provider, which is not allowed; its workflow must use one of: ${PROVIDER_NAMES.join(', ')}`,
    );
  }
  if ('depends-on' in body || 'name' in body) {
    const key = 'depends-on' in body ? 'depends-on' : 'name';
    throw invalid(`${formatPosition(file.keyAt(['workflow', key]))}: a provider's workflow cannot set '${key}'; the workflow that uses the provider does`);
  }
  return { source, file, definition: parsed.data };
}

/**
 * The workflow `name` that uses a custom provider, as a built-in one: the provider's workflow with
 * `${{ inputs.KEY }}` filled in from the workflow's own keys (or the inputs' defaults), and the
 * workflow's `artifacts`, `cache` and `resources` merged in (the workflow's own win).
 */
export function applyProvider(
  spec: CustomSpec,
  provider: LoadedProvider,
  where: { file: YamlFile; path: Path },
  ctx: Omit<InterpolationContext, 'inputs' | 'variables'>,
): Record<string, unknown> {
  const { definition, file } = provider;
  const name = provider.source.name;
  const declared = definition.inputs ?? {};
  const at = (...p: (string | number)[]) => formatPosition(where.file.at([...where.path, ...p]));
  const inputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(spec)) {
    if ((CUSTOM_OWN_KEYS as readonly string[]).includes(key)) continue;
    const input = declared[key];
    if (!input) {
      const hint = closest(key, Object.keys(declared));
      throw invalid(
        `${formatPosition(where.file.keyAt([...where.path, key]))}: unknown input '${key}' of provider '${name}' in workflow '${spec.name}'` +
          (hint ? ` (did you mean '${hint}'?)` : '') +
          `; its inputs: ${Object.keys(declared).join(', ') || 'none'}`,
      );
    }
    const problem = typeProblem(value, input.type ?? 'string');
    if (problem) throw invalid(`${at(key)}: input '${key}' of provider '${name}' must be ${problem}, got ${JSON.stringify(value)}`);
    inputs[key] = input.type === 'integer' || input.type === 'number' ? Number(value) : value;
  }
  for (const [key, input] of Object.entries(declared)) {
    if (key in inputs) continue;
    if (input.default !== undefined) inputs[key] = input.default;
    else if (input.required) {
      throw invalid(`${at('provider')}: workflow '${spec.name}' is missing the input '${key}' of provider '${name}'${input.help ? ` (${input.help})` : ''}; add '${key}:' to it`);
    } else inputs[key] = '';
  }
  // The provider's workflow is a built-in one, with shell text; the values it refers to join `ctx.env`.
  const body = interpolate(definition.workflow, { ...ctx, variables: {}, inputs, inputsOnly: false }, file, ['workflow']) as Record<string, unknown>;
  // The provider's workflow must be valid on its own, so its mistakes point into its own file.
  validateWorkflow({ ...body, name: spec.name }, file, ['workflow']);
  const merged: Record<string, unknown> = { ...body, name: spec.name };
  if (spec.help !== undefined) merged.help = spec.help;
  if (spec['depends-on'] !== undefined) merged['depends-on'] = spec['depends-on'];
  for (const key of ['artifacts', 'cache'] as const) {
    const list = [...((body[key] as unknown[] | undefined) ?? []), ...(spec[key] ?? [])];
    if (list.length > 0) merged[key] = dedupeByPath(list);
  }
  if (spec.resources || body.resources) merged.resources = { ...(body.resources as object | undefined), ...spec.resources };
  return merged;
}

function typeProblem(value: unknown, type: string): string | undefined {
  switch (type) {
    case 'integer':
      return Number.isInteger(typeof value === 'string' && value.trim() !== '' ? Number(value) : value) ? undefined : 'an integer';
    case 'number':
      return Number.isFinite(typeof value === 'string' && value.trim() !== '' ? Number(value) : value) ? undefined : 'a number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'true or false';
    default:
      return typeof value === 'string' || typeof value === 'number' ? undefined : 'a string';
  }
}

function dedupeByPath(list: unknown[]): unknown[] {
  const seen = new Set<string>();
  return list.filter((item) => {
    const p = typeof item === 'string' ? item : (item as { path?: string })?.path ?? JSON.stringify(item);
    const key = p.replace(/^\.\//, '').replace(/\/+$/, '');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
