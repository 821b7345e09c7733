import { DstackError } from './errors.js';
import { agentLabel } from './workflow/schema.js';
import type { ResolvedWorkflow } from './workflow/types.js';

export interface ParsedRunArgs {
  detach: boolean;
  isolation?: string;
  image?: string;
  /** `--label L`, each time it is given. */
  labels?: string[];
  /** `--NAME VALUE` for names that are variables of a workflow in the run. */
  overrides: Record<string, string>;
  /** Everything else, as typed, for `${{ run.args }}`. */
  args: string[];
}

/**
 * Splits what follows `dstack run WORKFLOW`: `-d`/`--detach`, `--isolation X`, `--image X` and `--label X` are dstack's; `--NAME VALUE` (or
 * `--NAME=VALUE`) sets variable NAME when `isVariable(NAME)`; the rest is the run's arguments.
 * After `--`, everything is the run's.
 */
export function parseRunArgs(tokens: readonly string[], isVariable: (name: string) => boolean): ParsedRunArgs {
  const rest: string[] = [];
  const overrides: Record<string, string> = {};
  let detach = false;
  const options: { isolation?: string; image?: string } = {};
  const labels: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '--') {
      rest.push(...tokens.slice(i + 1));
      break;
    }
    if (t === '-d' || t === '--detach') {
      detach = true;
      continue;
    }
    const own = /^--(isolation|image|label)(?:=(.*))?$/s.exec(t);
    if (own && (own[2] !== undefined || i + 1 < tokens.length)) {
      const value = own[2] ?? tokens[++i]!;
      if (own[1] === 'label') labels.push(value);
      else options[own[1] as 'isolation' | 'image'] = value;
      continue;
    }
    const m = /^--([A-Za-z_][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(t);
    if (m && isVariable(m[1]!)) {
      if (m[2] !== undefined) overrides[m[1]!] = m[2];
      else if (i + 1 < tokens.length) overrides[m[1]!] = tokens[++i]!;
      else rest.push(t);
      continue;
    }
    rest.push(t);
  }
  return { detach, ...options, ...(labels.length > 0 ? { labels } : {}), overrides, args: rest };
}

/** `--label` values, checked as `resources.labels` in a workflow file is. */
export function checkLabels(labels: string[]): string[] {
  for (const label of labels) {
    const r = agentLabel.safeParse(label);
    if (!r.success) throw new DstackError('DSTACK_ERR_USAGE', `invalid --label '${label}': ${r.error.issues[0]!.message}`);
  }
  return labels;
}

/** A workflow asking for `labels` besides its own. */
export function withLabels(wf: ResolvedWorkflow, labels: string[]): ResolvedWorkflow {
  if (labels.length === 0) return wf;
  return { ...wf, resources: { ...wf.resources, labels: [...new Set([...(wf.resources.labels ?? []), ...labels])] } };
}
