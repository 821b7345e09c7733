import fs from 'node:fs';
import path from 'node:path';
import { DstackError } from '../errors.js';
import { closest } from '../suggest.js';
import { interpolate, type InterpolationContext } from './interpolate.js';
import { applyProvider, loadProvider, type LoadedProvider } from './custom-workflow.js';
import { jobPaths } from './job-paths.js';
import { ProviderFetchError, type ProviderRepos } from './provider-repos.js';
import { variablesFile, type WorkflowSpec } from './schema.js';
import type { Triggers } from './triggers.js';
import type { Dependency, ResolvedWorkflow, Resources } from './types.js';
import { validateWorkflow } from './validate.js';
import { formatPosition, YamlFile, type Path } from './yaml-file.js';

interface WorkflowEntry {
  name: string;
  raw: unknown;
  file: YamlFile;
  path: Path;
}

export interface ResolveOptions {
  /** The run's arguments, as the words the user typed. */
  args?: readonly string[];
  runName?: string;
  /** `--NAME VALUE` from the command line; only names that are variables of a workflow apply to it. */
  overrides?: Record<string, string>;
  /** The names of the secrets that exist (values are put in only when the job starts). */
  secrets?: readonly string[];
  /** The custom providers the run's workflows use, fetched by `providersFor`. */
  providers?: ReadonlyMap<string, LoadedProvider>;
}

/**
 * The workflows of one repository: `.dstack/workflows.yaml` and `.dstack/workflows/*.yaml`, merged,
 * with `.dstack/variables.yaml`. Loading checks every workflow, so a mistake anywhere is reported
 * before anything runs.
 */
export class Project {
  private readonly entries = new Map<string, WorkflowEntry>();
  private readonly variables: Record<string, Record<string, unknown>> = {};

  private constructor(readonly root: string) {}

  static load(root: string): Project {
    const project = new Project(root);
    project.readVariables();
    project.readWorkflows();
    for (const name of project.entries.keys()) project.check(name);
    for (const name of project.entries.keys()) project.closure(name);
    return project;
  }

  get workflowNames(): string[] {
    return [...this.entries.keys()];
  }

  help(name: string): string | undefined {
    const raw = this.entries.get(name)?.raw as { help?: unknown } | undefined;
    return typeof raw?.help === 'string' ? raw.help : undefined;
  }

  /** A workflow's `on:` (checked when loading; `dstack run` ignores it, the GitHub App reads it on a push). */
  triggersOf(name: string): Triggers | undefined {
    return (this.entry(name).raw as { on?: Triggers } | null)?.on;
  }

  /** The variables a workflow sees: `global`, then its own. */
  variablesOf(name: string): Record<string, unknown> {
    return { ...(this.variables.global ?? {}), ...(this.variables[name] ?? {}) };
  }

  /** The workflows to run for `name`, dependencies first (tagged dependencies are not run). */
  closure(name: string): string[] {
    this.entry(name);
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (wf: string, stack: string[]) => {
      if (state.get(wf) === 'done') return;
      if (state.get(wf) === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(wf)), wf].join(' -> ');
        const e = this.entry(wf);
        throw new DstackError(
          'DSTACK_ERR_DEPENDENCY_CYCLE',
          `${formatPosition(e.file.at([...e.path, 'depends-on']))}: depends-on forms a cycle: ${cycle}; remove one of these dependencies`,
        );
      }
      state.set(wf, 'visiting');
      for (const dep of this.dependenciesOf(wf)) if (!dep.tag) visit(dep.workflow, [...stack, wf]);
      state.set(wf, 'done');
      order.push(wf);
    };
    visit(name, []);
    return order;
  }

  /**
   * Fetches the custom providers that `workflows` use (the one step of resolving a run that needs
   * the network): a repository that cannot be fetched, or a provider file that is missing or
   * wrong, is an error naming where the workflow uses it.
   */
  async providersFor(workflows: readonly string[], repos: ProviderRepos): Promise<Map<string, LoadedProvider>> {
    const out = new Map<string, LoadedProvider>();
    for (const name of workflows) {
      const entry = this.entry(name);
      const provider = (entry.raw as { provider?: unknown }).provider;
      if (typeof provider !== 'object' || provider === null) continue;
      const { repo, name: providerName, ref } = provider as { repo: string; name: string; ref?: string };
      let source;
      try {
        source = await repos.get(repo, providerName, ref, this.root);
      } catch (err) {
        if (!(err instanceof ProviderFetchError)) throw err;
        throw new DstackError(
          'DSTACK_ERR_PROVIDER_FETCH',
          `${formatPosition(entry.file.at([...entry.path, 'provider']))}: cannot get provider '${providerName}' of workflow '${name}': ${err.message}`,
          { cause: err },
        );
      }
      out.set(name, loadProvider(source));
    }
    return out;
  }

  /** Checks one workflow as `resolve` would; a custom provider's own file is checked when a run fetches it. */
  private check(name: string): void {
    const entry = this.entry(name);
    const ctx: InterpolationContext = { variables: this.variablesOf(name), run: { args: [], name: '' }, workflow: name, inputsOnly: usesCustomProvider(entry), env: {} };
    const raw = interpolate(entry.raw, ctx, entry.file, entry.path);
    const validated = validateWorkflow(raw, entry.file, entry.path);
    if (validated.kind === 'builtin') this.normalise(validated.spec, entry);
  }

  /** One workflow with its expressions resolved for a run, validated and normalised. */
  resolve(name: string, options: ResolveOptions = {}): ResolvedWorkflow {
    const entry = this.entry(name);
    const variables = this.variablesOf(name);
    for (const [k, v] of Object.entries(options.overrides ?? {})) if (Object.hasOwn(variables, k)) variables[k] = overrideValue(k, v);
    const ctx: InterpolationContext = {
      variables,
      run: { args: options.args ?? [], name: options.runName ?? '' },
      secrets: options.secrets,
      workflow: name,
      inputsOnly: usesCustomProvider(entry),
      env: {},
    };
    const raw = interpolate(entry.raw, ctx, entry.file, entry.path);
    const validated = validateWorkflow(raw, entry.file, entry.path);
    const runArgs = [...(options.args ?? [])];
    // The values that shell text refers to join the job's environment (see interpolate.ts).
    const withValues = (wf: ResolvedWorkflow): ResolvedWorkflow => ({ ...wf, env: { ...wf.env, ...ctx.env } });
    if (validated.kind === 'builtin') return { ...withValues(this.normalise(validated.spec, entry)), runArgs };
    const provider = options.providers?.get(name);
    if (!provider) throw new Error(`workflow '${name}' uses a custom provider: fetch it with providersFor() first`);
    const merged = applyProvider(validated.spec, provider, { file: entry.file, path: entry.path }, ctx);
    const spec = validateWorkflow(merged, entry.file, entry.path).spec as WorkflowSpec;
    const { repo, name: providerName, ref, commit } = provider.source;
    return { ...withValues(this.normalise(spec, entry)), runArgs, customProvider: { repo, name: providerName, ...(ref ? { ref } : {}), commit } };
  }

  private normalise(spec: WorkflowSpec, entry: WorkflowEntry): ResolvedWorkflow {
    const at = (...p: (string | number)[]) => formatPosition(entry.file.at([...entry.path, ...p]));
    const { workingDir, artifacts, cache } = jobPaths(spec, at);
    const env: Record<string, string> = {};
    for (const key of ['env', 'environment'] as const) {
      const value = (spec as { [k: string]: unknown })[key] as Record<string, unknown> | string[] | undefined;
      if (Array.isArray(value)) {
        for (const item of value) {
          const eq = item.indexOf('=');
          env[item.slice(0, eq)] = item.slice(eq + 1);
        }
      } else if (value) {
        for (const [k, v] of Object.entries(value)) env[k] = String(v);
      }
    }
    const ports = 'ports' in spec && spec.ports ? spec.ports.map(Number) : [];
    return {
      name: spec.name,
      provider: spec.provider,
      spec,
      dependsOn: this.dependenciesOf(spec.name),
      workingDir,
      artifacts,
      cache,
      ports,
      env,
      resources: normaliseResources('resources' in spec ? spec.resources : undefined),
      position: entry.file.at(entry.path),
    };
  }

  private dependenciesOf(name: string): Dependency[] {
    const entry = this.entry(name);
    const list = (entry.raw as { 'depends-on'?: unknown })['depends-on'];
    if (!Array.isArray(list)) return [];
    return list.map((item, i) => {
      const [workflow, tag] = String(item).split(':') as [string, string | undefined];
      if (!tag && !this.entries.has(workflow)) {
        const hint = closest(workflow, this.entries.keys());
        throw new DstackError(
          'DSTACK_ERR_WORKFLOW_UNKNOWN',
          `${formatPosition(entry.file.at([...entry.path, 'depends-on', i]))}: workflow '${name}' depends on unknown workflow '${workflow}'` +
            (hint ? ` (did you mean '${hint}'?)` : '') +
            `; defined workflows: ${this.workflowNames.join(', ')}`,
        );
      }
      return tag ? { workflow, tag } : { workflow };
    });
  }

  private entry(name: string): WorkflowEntry {
    const e = this.entries.get(name);
    if (e) return e;
    const hint = closest(name, this.entries.keys());
    throw new DstackError(
      'DSTACK_ERR_WORKFLOW_UNKNOWN',
      `unknown workflow '${name}'` + (hint ? ` (did you mean '${hint}'?)` : '') + `; defined workflows: ${this.workflowNames.join(', ')}`,
    );
  }

  private read(relative: string): YamlFile {
    return new YamlFile(relative, fs.readFileSync(path.join(this.root, relative), 'utf8'));
  }

  private readVariables(): void {
    const relative = ['.dstack/variables.yaml', '.dstack/variables.yml'].find((f) => fs.existsSync(path.join(this.root, f)));
    if (!relative) return;
    const file = this.read(relative);
    if (file.value === null) return;
    const parsed = variablesFile.safeParse(file.value);
    if (!parsed.success) {
      const issues = parsed.error.issues;
      const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
      const where = formatPosition(
        issue.code === 'unrecognized_keys' ? file.keyAt([...(issue.path as string[]), issue.keys[0]!]) : file.at(issue.path as (string | number)[]),
      );
      const what = issue.code === 'unrecognized_keys' ? `unknown key '${issue.keys[0]}'` : `invalid '${issue.path.join('.') || 'variables'}'`;
      throw new DstackError(
        'DSTACK_ERR_WORKFLOW_INVALID',
        `${where}: ${what} in ${relative}; expected 'variables:' with maps of names to values, per workflow or under 'global'`,
      );
    }
    for (const [scope, vars] of Object.entries(parsed.data.variables)) this.variables[scope] = vars ?? {};
  }

  private readWorkflows(): void {
    const files: string[] = [];
    for (const single of ['.dstack/workflows.yaml', '.dstack/workflows.yml']) {
      if (fs.existsSync(path.join(this.root, single))) files.push(single);
    }
    const dir = path.join(this.root, '.dstack/workflows');
    if (fs.existsSync(dir) && fs.statSync(dir).isDirectory()) {
      for (const f of fs.readdirSync(dir).sort()) if (/\.ya?ml$/.test(f)) files.push(`.dstack/workflows/${f}`);
    }
    if (files.length === 0) {
      throw new DstackError(
        'DSTACK_ERR_NO_WORKFLOWS',
        `no workflows in ${this.root}: create .dstack/workflows.yaml (or .dstack/workflows/*.yaml) with a 'workflows:' list`,
      );
    }
    for (const relative of files) {
      const file = this.read(relative);
      const value = file.value as { workflows?: unknown } | null;
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value) || !('workflows' in value)) {
        throw new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${formatPosition(file.at([]))}: ${relative} must have a 'workflows:' list at its root`);
      }
      const extra = Object.keys(value).find((k) => k !== 'workflows');
      if (extra) {
        throw new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${formatPosition(file.keyAt([extra]))}: unknown key '${extra}' in ${relative}; only 'workflows' is allowed at the root`);
      }
      // Seed 000 writes a single workflow as a map under `workflows:`; accept it as a list of one.
      const list = Array.isArray(value.workflows) ? value.workflows : value.workflows && typeof value.workflows === 'object' ? [value.workflows] : null;
      if (!list) throw new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${formatPosition(file.at(['workflows']))}: 'workflows' in ${relative} must be a list`);
      list.forEach((raw, i) => {
        const itemPath = Array.isArray(value.workflows) ? ['workflows', i] : ['workflows'];
        const name = (raw as { name?: unknown } | null)?.name;
        if (typeof name !== 'string') {
          validateWorkflow(raw, file, itemPath);
          return;
        }
        const previous = this.entries.get(name);
        if (previous) {
          throw new DstackError(
            'DSTACK_ERR_WORKFLOW_DUPLICATE',
            `${formatPosition(file.at([...itemPath, 'name']))}: workflow '${name}' is defined twice: in ${formatPosition(previous.file.at([...previous.path, 'name']))} and here; rename one`,
          );
        }
        this.entries.set(name, { name, raw, file, path: itemPath });
      });
    }
    if (this.entries.size === 0) {
      throw new DstackError('DSTACK_ERR_NO_WORKFLOWS', `no workflows defined in ${files.join(', ')}: add one under 'workflows:'`);
    }
  }
}

/** Whether a workflow uses a custom provider: then its keys besides its own are the provider's inputs, data. */
function usesCustomProvider(entry: WorkflowEntry): boolean {
  const provider = (entry.raw as { provider?: unknown } | null)?.provider;
  return typeof provider === 'object' && provider !== null;
}

/**
 * `--NAME VALUE` as typed: a string, but a number written as such, `true` or `false` takes that
 * type, so `gpu: ${{ n }}` takes `--n 2`. A value is data; it is never parsed as YAML.
 */
function overrideValue(name: string, text: string): string | number | boolean {
  if (text.includes('\u0000')) {
    throw new DstackError('DSTACK_ERR_USAGE', `the value of --${name} has a NUL character, which a job's environment cannot hold; remove it`);
  }
  if (text === 'true' || text === 'false') return text === 'true';
  const n = Number(text);
  return text !== '' && String(n) === text ? n : text;
}

const UNITS: Record<string, number> = { b: 1 / 1048576, kb: 1 / 1024, kib: 1 / 1024, mb: 1, mib: 1, gb: 1024, gib: 1024, tb: 1048576, tib: 1048576 };

/** A size in MiB: `32GB` is 32768; a plain number is already megabytes. */
export function sizeInMiB(size: string | number | undefined): number | undefined {
  if (size === undefined) return undefined;
  if (typeof size === 'number') return size;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(size.trim())!;
  return Number(m[1]) * (UNITS[(m[2] || 'mb').toLowerCase()] ?? 1);
}

function normaliseResources(r: { cpu?: number; memory?: string | number; gpu?: number | { count?: number; name?: string; memory?: string | number }; shm_size?: string | number; interruptible?: boolean; labels?: string[] } | undefined): Resources {
  const gpu = r?.gpu;
  return {
    cpu: r?.cpu,
    memoryMiB: sizeInMiB(r?.memory),
    gpu:
      gpu === undefined
        ? { count: 0 }
        : typeof gpu === 'number'
          ? { count: gpu }
          : { count: gpu.count ?? 1, name: gpu.name, memoryMiB: sizeInMiB(gpu.memory) },
    shmSizeMiB: sizeInMiB(r?.shm_size),
    interruptible: r?.interruptible ?? false,
    ...(r?.labels?.length ? { labels: [...new Set(r.labels)] } : {}),
  };
}
