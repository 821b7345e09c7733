import { DstackError } from '../errors.js';
import { secretPlaceholder } from '../secrets.js';
import { shellJoin } from '../shell-quote.js';
import { closest } from '../suggest.js';
import { commandsRunByShell } from './commands-run-by-shell.js';
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
  /**
   * Whether no string is shell text: true for the keys of a workflow that uses a custom provider,
   * which are all inputs of the provider (data), whatever their names.
   */
  inputsOnly?: boolean;
  /** Set by `interpolate` inside a docker workflow whose `entrypoint` is no shell: `commands` are data. */
  commandsAreData?: boolean;
  /**
   * Filled in by `interpolate`: the environment variables that hold the values shell text refers
   * to (`DSTACK_VAR_NAME`, `DSTACK_INPUT_KEY`, `DSTACK_SECRET_NAME`), for the job's environment.
   */
  env: Record<string, string>;
}

const EXPRESSION = /^\$\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}$/;

/**
 * Replaces `${{ name }}`, `${{ run.args }}`, `${{ run.name }}`, `${{ inputs.KEY }}` and
 * `${{ secrets.NAME }}` in every string of `value`; `$$` stands for one `$`. A string that is
 * nothing but one expression takes the variable's own type, so `gpu: ${{ pgpu }}` with `pgpu: 1` is
 * the number 1. In shell text no value is put in as text the shell would parse, see `shellReference`.
 */
export function interpolate(value: unknown, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  if (typeof value === 'string') return interpolateString(value, ctx, file, path);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, ctx, file, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const docker = (value as { provider?: unknown }).provider === 'docker';
    // `ctx.env` stays shared: the copy only marks docker's `commands` as data.
    const inner = docker && !commandsRunByShell((value as { entrypoint?: unknown }).entrypoint) ? { ...ctx, commandsAreData: true } : ctx;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, inner, file, [...path, k]);
    return out;
  }
  return value;
}

/**
 * Where a string stands, for what a value put in it may do:
 * - `shell`: each of `commands` (docker's only where a shell runs them), and python's `script`;
 * - `words`: docker's `entrypoint` as one string, which is split at whitespace into the command;
 * - `env-entry`: an item `NAME=VALUE` of an `env`/`environment` list, whose name must be the file's;
 * - `env-value`: a value of an `env`/`environment` map, taken as it is;
 * - `data`: everything else (an image, a URL, a path, a non-shell entrypoint's commands), as it is.
 */
type Context = 'shell' | 'words' | 'env-entry' | 'env-value' | 'data';

function contextOf(path: Path, ctx: InterpolationContext): Context {
  if (ctx.inputsOnly) return 'data';
  const last = path[path.length - 1];
  const parent = path[path.length - 2];
  if (last === 'script') return 'shell';
  if (typeof last === 'number' && parent === 'commands') return ctx.commandsAreData ? 'data' : 'shell';
  if (last === 'entrypoint') return 'words';
  if (parent === 'env' || parent === 'environment') return typeof last === 'number' ? 'env-entry' : 'env-value';
  return 'data';
}

/**
 * Where an expression stands in shell text: outside quotes, inside single or double quotes, in a
 * `#` comment (whose quotes open nothing), or in the body of a here-document, whose delimiter
 * unquoted (`<<EOF`) expands as double quotes do and quoted (`<<'EOF'`) passes on as single
 * quotes do.
 */
type Quote = 'none' | 'single' | 'double' | 'comment' | 'heredoc' | 'quoted-heredoc';

/** The shell quoting state after `ch`, which follows `previous` (outside a here-document's body). */
function nextQuote(state: Quote, ch: string, previous: string | undefined): Quote {
  if (state === 'none') {
    if (ch === '#' && (previous === undefined || /[\s;&|()]/.test(previous))) return 'comment';
    return ch === "'" ? 'single' : ch === '"' ? 'double' : 'none';
  }
  if (state === 'single') return ch === "'" ? 'none' : 'single';
  if (state === 'double') return ch === '"' ? 'none' : 'double';
  if (state === 'comment') return ch === '\n' ? 'none' : 'comment';
  return state;
}

/** A here-document operator (`<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"`, `<<\EOF`; not `<<<`). */
const HEREDOC = /^<<(-?)[ \t]*((?:'[^'\n]*'|"[^"\n]*"|\\.|[^\s;&|<>()'"\\])+)/;

interface HereDoc {
  delimiter: string;
  /** `<<-`: leading tabs of the delimiter line are ignored. */
  stripTabs: boolean;
  quoted: boolean;
}

function hereDoc(operator: RegExpExecArray): HereDoc {
  const word = operator[2]!;
  return { delimiter: word.replace(/\\(.)|['"]/g, (_, c: string | undefined) => c ?? ''), stripTabs: operator[1] === '-', quoted: /['"\\]/.test(word) };
}

/** Whether the line at `i` ends the body of `doc`, and where that line ends. */
function delimiterLine(text: string, i: number, doc: HereDoc): number | undefined {
  const newline = text.indexOf('\n', i);
  const end = newline < 0 ? text.length : newline;
  const line = text.slice(i, end);
  return (doc.stripTabs ? line.replace(/^\t+/, '') : line) === doc.delimiter ? end : undefined;
}

function interpolateString(text: string, ctx: InterpolationContext, file: YamlFile, path: Path): unknown {
  if (!text.includes('$')) return text;
  const context = contextOf(path, ctx);
  const shell = context === 'shell';
  const whole = EXPRESSION.exec(text.trim());
  if (whole && (context === 'data' || context === 'env-value')) {
    const v = lookup(whole[1]!, ctx, file, path);
    if (typeof v === 'number' || typeof v === 'boolean') return v;
  }
  let quote: Quote = 'none';
  // Here-documents opened on the current line, then the one whose body is being read first.
  const hereDocs: HereDoc[] = [];
  const bodyOf = (doc: HereDoc | undefined): Quote => (doc === undefined ? 'none' : doc.quoted ? 'quoted-heredoc' : 'heredoc');
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const inBody = quote === 'heredoc' || quote === 'quoted-heredoc';
    const bodyEnd = inBody && text[i - 1] === '\n' ? delimiterLine(text, i, hereDocs[0]!) : undefined;
    const operator = shell && quote === 'none' && ch === '<' && text[i - 1] !== '<' ? HEREDOC.exec(text.slice(i)) : null;
    if (bodyEnd !== undefined) {
      out += text.slice(i, bodyEnd);
      i = bodyEnd;
      hereDocs.shift();
      quote = bodyOf(hereDocs[0]);
    } else if (operator) {
      // Taken whole, so that the quotes of `<<'EOF'` open nothing.
      hereDocs.push(hereDoc(operator));
      out += operator[0];
      i += operator[0].length;
    } else if (shell && ch === '\n' && (quote === 'none' || quote === 'comment') && hereDocs.length > 0) {
      quote = bodyOf(hereDocs[0]);
      out += ch;
      i += 1;
    } else if (shell && ch === '\\' && quote !== 'single' && quote !== 'quoted-heredoc' && text[i + 1] !== '$') {
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
      if (context === 'env-entry' && !text.slice(0, i).includes('=')) {
        throw invalidPlace(name, `names an environment variable, which a value may not choose; write NAME=\${{ ${name} }}`, ctx, file, path);
      }
      if (shell) out += shellReference(name, quote, ctx, file, path);
      else if (context === 'words') out += wordsOf(name, ctx, file, path);
      else if (context === 'env-entry' || context === 'env-value') out += environmentValue(name, ctx, file, path);
      else out += textOf(name, ctx, file, path);
      i = end + 2;
    } else {
      if (shell) quote = nextQuote(quote, ch, text[i - 1]);
      out += ch;
      i += 1;
    }
  }
  return out;
}

/**
 * An expression in shell text. A value is never put in as text the shell would parse: the job's
 * environment holds it (see `environmentName`) and the command refers to it, as
 * `${{ run.args }}` refers to the positional parameters the job script sets. Bare, the reference is
 * quoted, so the value is one word (an empty value, none, as it was); inside double quotes or an
 * unquoted here-document it is the value as is. Either way `$(…)`, backticks, quotes and `;` in it
 * stay text. Inside single quotes (or a here-document with a quoted delimiter) the shell would not
 * expand a reference, and the text there is often another program's code (`sh -c '…'`,
 * `python -c '…'`), so the file is refused. One thing no quoting helps: bash evaluates a value as
 * an expression where it does arithmetic (`$((…))`, `[[ … -eq … ]]`), and there runs `$(…)` or
 * backticks in an array subscript, so such a value is refused (see `refuseArithmeticCode`).
 */
function shellReference(name: string, quote: Quote, ctx: InterpolationContext, file: YamlFile, path: Path): string {
  if (quote === 'single') {
    throw invalidPlace(name, 'stands inside single quotes, where the shell passes it on as it is; move it out of the quotes (or into double quotes)', ctx, file, path);
  }
  if (quote === 'quoted-heredoc') {
    throw invalidPlace(name, "stands inside a here-document with a quoted delimiter (<<'EOF'), where the shell passes it on as it is; write the delimiter unquoted (<<EOF)", ctx, file, path);
  }
  const bare = quote === 'none' || quote === 'comment';
  if (name === 'run.args') {
    for (const arg of ctx.run.args) refuseArithmeticCode(name, arg, ctx, file, path);
    return bare ? '"$@"' : '${*}';
  }
  // The run name is dstack's own: letters, digits and '-'.
  if (name === 'run.name') return String(lookup(name, ctx, file, path));
  const value = textOf(name, ctx, file, path);
  if (value === '') return '';
  refuseArithmeticCode(name, value, ctx, file, path);
  const variable = environmentName(name, value, ctx);
  return bare ? `"\${${variable}}"` : `\${${variable}}`;
}

/**
 * Refuses a value with `[` before `$` or a backtick (`a[$(cmd)]`), which bash runs as code where
 * it does arithmetic, quoted or not. It is checked wherever a value becomes the value of a variable
 * of the job's environment: in shell text (the job's `DSTACK_VAR_NAME`; each run argument, which
 * `${{ run.args }}` passes as a positional parameter) and in `env`/`environment`. The latter
 * because arithmetic evaluates a variable's NAME by its value, recursively: `$(( ${{ foo }} ))`
 * with `--foo B` evaluates `$B`. Only the job's environment holds values a name can reach, so no
 * value from a variable, input or run argument that bash could reach by name runs. A secret's value
 * is put in by the agent, unseen here; it is the repository's own.
 */
function refuseArithmeticCode(name: string, value: string, ctx: InterpolationContext, file: YamlFile, path: Path): void {
  if (!/\[[^]*[$`]/.test(value)) return;
  const what = name === 'run.args' ? `the run argument ${JSON.stringify(value)} of \${{ run.args }}` : `the value of \${{ ${name} }}`;
  const where = `in '${keyOf(path)}' of workflow '${ctx.workflow}'` + (name === 'run.args' ? '' : ` (${JSON.stringify(value)})`);
  throw new DstackError(
    'DSTACK_ERR_USAGE',
    `${formatPosition(file.at(path))}: ${what} ${where} has '[' before '$' or a backtick, which bash runs as code where it does arithmetic ($((…)), [[ … -eq … ]]); give ${name === 'run.args' ? 'an argument' : 'a value'} without them`,
  );
}

/** An expression in an environment value: the value as is, refused where bash would run it (see `refuseArithmeticCode`). */
function environmentValue(name: string, ctx: InterpolationContext, file: YamlFile, path: Path): string {
  if (name === 'run.args') for (const arg of ctx.run.args) refuseArithmeticCode(name, arg, ctx, file, path);
  const value = textOf(name, ctx, file, path);
  if (name !== 'run.args') refuseArithmeticCode(name, value, ctx, file, path);
  return value;
}

/** The value of `name` as text: `null` (a variable without a value) is empty. */
function textOf(name: string, ctx: InterpolationContext, file: YamlFile, path: Path): string {
  const v = lookup(name, ctx, file, path);
  return v === null || v === undefined ? '' : String(v);
}

/**
 * An expression in docker's `entrypoint` written as one string, which is split at whitespace into
 * the command: its words as they are (the run's arguments, one word each), and a value with
 * whitespace, which would add words of its own, refused.
 */
function wordsOf(name: string, ctx: InterpolationContext, file: YamlFile, path: Path): string {
  const words = name === 'run.args' ? ctx.run.args : [textOf(name, ctx, file, path)];
  const spaced = words.find((w) => /\s/.test(w));
  if (spaced !== undefined) {
    throw invalidPlace(
      name,
      `has spaces in its value (${JSON.stringify(spaced)}), which would split it into more words of the command; write '${keyOf(path)}' as a list, with \${{ ${name} }} as one item`,
      ctx,
      file,
      path,
    );
  }
  return words.join(' ');
}

/**
 * The job's environment variable that holds `value` for `${{ name }}`: `DSTACK_VAR_NAME`,
 * `DSTACK_INPUT_KEY`, or `DSTACK_SECRET_NAME` (which holds the secret's placeholder until the agent
 * puts the value in, as it does everywhere in the workflow).
 */
function environmentName(name: string, value: string, ctx: InterpolationContext): string {
  const [prefix, rest] =
    name.startsWith('inputs.') && ctx.inputs
      ? ['DSTACK_INPUT_', name.slice('inputs.'.length)]
      : name.startsWith('secrets.')
        ? ['DSTACK_SECRET_', name.slice('secrets.'.length)]
        : ['DSTACK_VAR_', name];
  const base = (prefix + rest).replace(/[^A-Za-z0-9_]/g, '_');
  // `a-b` and `a_b` share a name; a second value with the name gets a number after it.
  let candidate = base;
  for (let n = 2; Object.hasOwn(ctx.env, candidate) && ctx.env[candidate] !== value; n++) candidate = `${base}_${n}`;
  ctx.env[candidate] = value;
  return candidate;
}

function keyOf(path: Path): string {
  return String(path.findLast((p) => typeof p === 'string') ?? '');
}

/** `${{ name }}` where it cannot stand: the file, line, key and workflow, then `what` is wrong and what to do. */
function invalidPlace(name: string, what: string, ctx: InterpolationContext, file: YamlFile, path: Path): DstackError {
  return new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${formatPosition(file.at(path))}: \${{ ${name} }} in '${keyOf(path)}' of workflow '${ctx.workflow}' ${what}`);
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
