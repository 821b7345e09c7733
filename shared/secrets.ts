/**
 * `${{ secrets.NAME }}` is not resolved when a workflow is read: it becomes a placeholder that no
 * YAML text can contain (NUL-delimited), so secret values are never stored with the run and only
 * meet the job's own process when it starts.
 */
const MARK = '\u0000';
const PLACEHOLDER = /\u0000secret:([A-Za-z_][A-Za-z0-9_]*)\u0000/g;

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function secretPlaceholder(name: string): string {
  return `${MARK}secret:${name}${MARK}`;
}

/** The names of the secrets a value (a workflow, deeply) refers to. */
export function referencedSecrets(value: unknown): string[] {
  const names = new Set<string>();
  walk(value, (s) => {
    for (const m of s.matchAll(PLACEHOLDER)) names.add(m[1]!);
    return s;
  });
  return [...names];
}

/** A copy of `value` with every secret placeholder replaced by its value. */
export function injectSecrets<T>(value: T, secrets: Record<string, string>): T {
  return walk(value, (s) => s.replace(PLACEHOLDER, (_, name: string) => secrets[name] ?? '')) as T;
}

function walk(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((v) => walk(v, f));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, f)]));
  }
  return value;
}
