import { DstackError } from '../errors.js';
import { secretPlaceholder } from '../secrets.js';
import { closest } from '../suggest.js';
import { formatPosition, type Path, type YamlFile } from './yaml-file.js';

export interface InterpolationContext {
  /** The workflow's variables: `global`, then its own, then `--NAME VALUE` overrides. */
  variables: Record<string, unknown>;
  run: { args: string; name: string };
  /**
   * The names of the secrets that exist: a reference to another is an error. `undefined` when
   * only checking the files. Either way a secret's value is not put in: see shared/secrets.ts.
   */
  secrets?: readonly string[];
  workflow: string;
}

const EXPRESSION = /^\$\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}$/;

/**
 * Replaces `${{ name }}`, `${{ run.args }}`, `${{ run.name }}` and `${{ secrets.NAME }}` in every
 * string of `value`; `$$` stands for one `$`. A string that is nothing but one expression takes
 * the variable's own type, so `gpu: ${{ pgpu }}` with `pgpu: 1` is the number 1.
 */
export function interpolate(value: unknown, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  if (typeof value === 'string') return interpolateString(value, ctx, file, path);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, ctx, file, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, ctx, file, [...path, k]);
    return out;
  }
  return value;
}

function interpolateString(text: string, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  if (!text.includes('$')) return text;
  const whole = EXPRESSION.exec(text.trim());
  if (whole) {
    const v = lookup(whole[1]!, ctx, file, path);
    if (typeof v === 'number' || typeof v === 'boolean') return v;
  }
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '$' && text[i + 1] === '$') {
      out += '$';
      i += 2;
    } else if (ch === '$' && text.startsWith('{{', i + 1)) {
      const end = text.indexOf('}}', i + 3);
      if (end < 0) {
        throw new DstackError(
          'DSTACK_ERR_WORKFLOW_INVALID',
          `${formatPosition(file.at(path))}: unterminated '\${{' in workflow '${ctx.workflow}'; close it with '}}', or write '$$' for a literal '$'`,
        );
      }
      const name = text.slice(i + 3, end).trim();
      const v = lookup(name, ctx, file, path);
      out += v === null || v === undefined ? '' : String(v);
      i = end + 2;
    } else {
      out += ch;
      i += 1;
    }
  }
  return out;
}

function lookup(name: string, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  const where = formatPosition(file.at(path));
  if (name === 'run.args') return ctx.run.args;
  if (name === 'run.name') return ctx.run.name;
  if (name.startsWith('secrets.')) {
    const secret = name.slice('secrets.'.length);
    if (ctx.secrets !== undefined && !ctx.secrets.includes(secret)) {
      throw new DstackError(
        'DSTACK_ERR_SECRET_UNKNOWN',
        `${where}: unknown secret '${secret}' in workflow '${ctx.workflow}'; add it with 'dstack secrets add ${secret}'`,
      );
    }
    return secretPlaceholder(secret);
  }
  if (Object.hasOwn(ctx.variables, name)) return ctx.variables[name];
  const hint = closest(name, [...Object.keys(ctx.variables), 'run.args', 'run.name']);
  throw new DstackError(
    'DSTACK_ERR_VARIABLE_UNKNOWN',
    `${where}: unknown variable '${name}' in workflow '${ctx.workflow}'` +
      (hint ? ` (did you mean '${hint}'?)` : '') +
      `; define it in .dstack/variables.yaml under '${ctx.workflow}' or 'global'`,
  );
}
