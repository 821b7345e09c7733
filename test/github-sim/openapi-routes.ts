/** One operation of the subset, matched by method and path template. */
export interface RouteMatch {
  operationId: string;
  template: string;
  method: string;
  params: Record<string, string>;
}

interface CompiledRoute {
  method: string;
  template: string;
  operationId: string;
  regex: RegExp;
  names: string[];
}

/**
 * The routes of openapi-subset.json. Path parameters are one segment each, except a template's
 * last one when it is `{path}` or `{ref}`: GitHub takes `contents/a/b.txt` and `git/ref/heads/x`
 * with the slashes as they are, and Octokit sends them either raw or as `%2F`.
 */
export class OpenapiRoutes {
  private readonly routes: CompiledRoute[] = [];

  constructor(paths: Record<string, Record<string, { operationId: string }>>) {
    for (const [template, methods] of Object.entries(paths)) {
      const names: string[] = [];
      let source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string, offset: number, whole: string) => {
        names.push(name);
        const last = offset + _m.length === whole.length;
        return last && (name === 'path' || name === 'ref') ? '(.*)' : '([^/]+)';
      });
      // `contents` and `contents/` (an empty path) are the repository's root.
      if (template.endsWith('/{path}')) source = source.replace(/\/\(\.\*\)$/, '(?:/(.*))?');
      else source = source.replace(/\(\.\*\)$/, '(.+)');
      for (const [method, op] of Object.entries(methods)) this.routes.push({ method: method.toUpperCase(), template, operationId: op.operationId, regex: new RegExp(`^${source}$`), names });
    }
    // Literal segments first, so `releases/tags/{tag}` wins over `releases/{release_id}` shapes.
    this.routes.sort((a, b) => literalLength(b.template) - literalLength(a.template));
  }

  match(method: string, rawPath: string): RouteMatch | null {
    for (const r of this.routes) {
      if (r.method !== method) continue;
      const m = r.regex.exec(rawPath);
      if (!m) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1] ?? '')));
      return { operationId: r.operationId, template: r.template, method: r.method, params };
    }
    return null;
  }

  /** Whether any method serves this path: 404 vs 501 for an unknown one. */
  templates(): string[] {
    return [...new Set(this.routes.map((r) => `${r.method} ${r.template}`))];
  }
}

function literalLength(template: string): number {
  return template.replace(/\{\w+\}/g, '').length;
}
