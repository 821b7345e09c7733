import type { z } from 'zod';
import { DstackError } from '../errors.js';
import { closest } from '../suggest.js';
import { PROVIDERS, PROVIDER_NAMES, customWorkflow, type CustomSpec, type WorkflowSpec } from './schema.js';
import { formatPosition, type Path, type YamlFile } from './yaml-file.js';

export type ValidatedWorkflow = { kind: 'builtin'; spec: WorkflowSpec } | { kind: 'custom'; spec: CustomSpec };

/** Checks one (already interpolated) workflow entry; the first mistake becomes one clear error. */
export function validateWorkflow(raw: unknown, file: YamlFile, path: Path): ValidatedWorkflow {
  const where = (p: Path) => formatPosition(file.at(p));
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalid(`${where(path)}: a workflow must be a map with 'name' and 'provider'`);
  }
  const entry = raw as Record<string, unknown>;
  const label = typeof entry.name === 'string' ? `workflow '${entry.name}'` : 'a workflow';
  if (entry.name === undefined) throw invalid(`${where(path)}: ${label} is missing the required key 'name'`);
  if (entry.provider === undefined) {
    throw invalid(`${where(path)}: ${label} is missing the required key 'provider'; use one of: ${PROVIDER_NAMES.join(', ')}`);
  }
  if (typeof entry.provider === 'object' && entry.provider !== null) {
    return { kind: 'custom', spec: parse(customWorkflow, entry, file, path, label) };
  }
  const provider = String(entry.provider);
  if (!(provider in PROVIDERS)) {
    const hint = closest(provider, PROVIDER_NAMES);
    throw invalid(
      `${where([...path, 'provider'])}: unknown provider '${provider}' in ${label}` +
        (hint ? ` (did you mean '${hint}'?)` : '') +
        `; use one of: ${PROVIDER_NAMES.join(', ')}`,
    );
  }
  const schema = PROVIDERS[provider as keyof typeof PROVIDERS];
  return { kind: 'builtin', spec: parse(schema, entry, file, path, label) as WorkflowSpec };
}

function parse<S extends z.ZodType>(schema: S, entry: unknown, file: YamlFile, path: Path, label: string): z.infer<S> {
  const result = schema.safeParse(entry, { reportInput: true });
  if (result.success) return result.data;
  // A misspelt key explains a "missing" one better than the other way round.
  const issues = [...result.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
  throw invalid(describeIssue(firstIssue(issues), schema, file, path, label));
}

type Issue = z.core.$ZodIssue;

/** For a value that matches no branch of a union, the branch that got furthest says the most. */
function firstIssue(issues: readonly Issue[]): Issue {
  const issue = issues[0]!;
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue;
  let best: Issue | undefined;
  for (const branch of issue.errors) {
    const candidate = branch[0];
    if (!candidate) continue;
    const deeper = candidate.path.length > (best?.path.length ?? -1);
    const moreSpecific = best?.code === 'invalid_type' && candidate.code !== 'invalid_type';
    if (!best || deeper || moreSpecific) best = candidate;
  }
  if (!best || best.path.length === 0 && best.code === 'invalid_type') return issue;
  return firstIssue([{ ...best, path: [...issue.path, ...best.path] } as Issue]);
}

function describeIssue(issue: Issue, schema: z.ZodType, file: YamlFile, base: Path, label: string): string {
  const path = [...base, ...(issue.path as (string | number)[])];
  const dotted = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const bad = issue.keys[0]!;
    const known = knownKeys(schema, issue.path as (string | number)[]);
    const hint = closest(bad, known);
    const inside = dotted ? ` under '${dotted}'` : '';
    return (
      `${formatPosition(file.keyAt([...path, bad]))}: unknown key '${bad}'${inside} in ${label}` +
      (hint ? ` (did you mean '${hint}'?)` : known.length ? `; valid keys: ${known.join(', ')}` : '')
    );
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return `${formatPosition(file.at(path))}: ${label} is missing the required key '${dotted}'`;
  }
  const got = describeValue(issue.input);
  const expected =
    issue.code === 'invalid_type'
      ? `expected ${issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'a map' : `a ${issue.expected}`}`
      : issue.message.replace(/^Invalid input:?\s*/i, '').replace(/^Invalid string: must match pattern .*/, 'invalid format');
  return `${formatPosition(file.at(path))}: invalid '${dotted}' in ${label}: ${expected}${got ? `, got ${got}` : ''}`;
}

function describeValue(v: unknown): string {
  if (v === undefined) return '';
  if (v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** The keys a strict object inside `schema` at `path` accepts, to suggest the closest one. */
function knownKeys(schema: z.ZodType, path: (string | number)[]): string[] {
  let node: SchemaNode | undefined = schema as unknown as SchemaNode;
  for (const segment of path) {
    node = typeof segment === 'number' ? elementOf(node) : objectOf(node)?.shape?.[segment];
  }
  return Object.keys(objectOf(node)?.shape ?? {});
}

interface SchemaNode {
  shape?: Record<string, SchemaNode>;
  def?: { type?: string; innerType?: SchemaNode; options?: SchemaNode[]; element?: SchemaNode };
}

function unwrap(n: SchemaNode | undefined): SchemaNode | undefined {
  while (n?.def?.type === 'optional' || n?.def?.type === 'nullable') n = n.def.innerType;
  return n;
}

function objectOf(n: SchemaNode | undefined): SchemaNode | undefined {
  const u = unwrap(n);
  if (u?.shape) return u;
  return u?.def?.type === 'union' ? u.def.options?.map(objectOf).find(Boolean) : undefined;
}

function elementOf(n: SchemaNode | undefined): SchemaNode | undefined {
  const u = unwrap(n);
  if (u?.def?.type === 'array') return u.def.element;
  return u?.def?.type === 'union' ? u.def.options?.map(elementOf).find(Boolean) : undefined;
}

function invalid(message: string): DstackError {
  return new DstackError('DSTACK_ERR_WORKFLOW_INVALID', message);
}
