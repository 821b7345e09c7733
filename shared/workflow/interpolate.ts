import { DstackError } from '../errors.js';
import { secretPlaceholder } from '../secrets.js';
import { shellJoin } from '../shell-quote.js';
import { closest } from '../suggest.js';
import { formatPosition, type Path, type YamlFile } from './yaml-file.js';

export interface InterpolationContext {
  /** The workflow's variables: `global`, then its own, then `--NAME VALUE` overrides. */
  variables: Record<string, unknown>;
  /** The run's arguments as the user typed them (words), and its name. */
  run: { args: readonly string[]; name: string };
  /**
   * The names of the secrets that exist: a reference to another is an error. `undefined` when
   * only checking the files. Either way a secret's value is not put in: see shared/secrets.ts.
   */
  secrets?: readonly string[];
  workflow: string;
  /** In a custom provider's workflow: the inputs the workflow that uses it set (or their defaults). */
  inputs?: Record<string, unknown>;
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

/**
 * Keys whose strings a shell runs: each of `commands`, and python's `script`. There `${{ run.args }}`
 * becomes a reference to the job shell's positional parameters, which the job script sets to the
 * run's arguments (`set -- …`), so the arguments are always data, never code.
 */
function isShellText(path: Path): boolean {
  const last = path[path.length - 1];
  return last === 'script' || (typeof last === 'number' && path[path.length - 2] === 'commands');
}

type Quote = 'none' | 'single' | 'double';

/** The shell quoting state after `ch`, for finding whether an expression stands inside quotes. */
function nextQuote(state: Quote, ch: string): Quote {
  if (state === 'none') return ch === "'" ? 'single' : ch === '"' ? 'double' : 'none';
  if (state === 'single') return ch === "'" ? 'none' : 'single';
  return ch === '"' ? 'none' : 'double';
}

function interpolateString(text: string, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  if (!text.includes('$')) return text;
  const whole = EXPRESSION.exec(text.trim());
  if (whole) {
    const v = lookup(whole[1]!, ctx, file, path);
    if (typeof v === 'number' || typeof v === 'boolean') return v;
  }
  const shell = isShellText(path);
  let quote: Quote = 'none';
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (shell && ch === '\\' && quote !== 'single' && text[i + 1] !== '$') {
      // An escaped character neither opens nor closes quotes.
      out += text.slice(i, i + 2);
      i += 2;
    } else if (ch === '$' && text[i + 1] === '$') {
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
      if (name === 'run.args' && shell) out += shellArgsReference(quote, ctx, file, path);
      else {
        const v = lookup(name, ctx, file, path);
        out += v === null || v === undefined ? '' : String(v);
      }
      i = end + 2;
    } else {
      if (shell) quote = nextQuote(quote, ch);
      out += ch;
      i += 1;
    }
  }
  return out;
}

/**
 * `${{ run.args }}` in a shell command: bare, each argument as one word (`"$@"`); inside double
 * quotes, all of them as one string (`${*}`); inside single quotes the shell would not expand it.
 */
function shellArgsReference(quote: Quote, ctx: InterpolationContext, file: YamlFile, path: Path): string {
  if (quote === 'none') return '"$@"';
  if (quote === 'double') return '${*}';
  throw new DstackError(
    'DSTACK_ERR_WORKFLOW_INVALID',
    `${formatPosition(file.at(path))}: \${{ run.args }} stands inside single quotes in workflow '${ctx.workflow}', where the shell passes it on as it is; move it out of the quotes (or into double quotes)`,
  );
}

function lookup(name: string, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  const where = formatPosition(file.at(path));
  // Outside shell commands (an environment value, say), the arguments shell-quoted as one string.
  if (name === 'run.args') return shellJoin(ctx.run.args);
  if (name === 'run.name') return ctx.run.name;
  if (name.startsWith('inputs.') && ctx.inputs) {
    const input = name.slice('inputs.'.length);
    if (Object.hasOwn(ctx.inputs, input)) return ctx.inputs[input];
    const hint = closest(input, Object.keys(ctx.inputs));
    throw new DstackError(
      'DSTACK_ERR_WORKFLOW_INVALID',
      `${where}: unknown input '${input}'` + (hint ? ` (did you mean '${hint}'?)` : '') + `; declare it under 'inputs:' in the provider file`,
    );
  }
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
