/**
 * The `/dstack …` commands of a pull-request or issue comment. Every line that starts with
 * `/dstack` is one command; the text around them is ignored, and so are lines inside fenced or
 * indented code blocks and quotes (a reply that quotes a command, or the app's own help, runs
 * nothing). Words are split as a POSIX shell splits them (quotes, backslashes), and never
 * evaluated: `$HOME` stays `$HOME`.
 */
export type CommentCommand =
  /** `/dstack run WORKFLOW [--NAME VALUE] [ARGS]`: `words` is what follows the workflow, for parseRunArgs. */
  | { name: 'run'; line: string; workflow: string; words: string[] }
  /** `/dstack stop [RUN]`: without RUN, the runs this pull request or issue started that still go. */
  | { name: 'stop'; line: string; run?: string }
  | { name: 'tag'; line: string; run: string; tag: string }
  | { name: 'help'; line: string }
  /** A line that starts with `/dstack` but is not a command: the reply says why. */
  | { name: 'invalid'; line: string; error: string };

/** The most commands one comment may hold; a comment with more is refused whole. */
export const MAX_COMMANDS = 10;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const RUN_NAME = /^[a-z]+-[a-z]+-\d+$/;

/** The commands of a comment, in order. */
export function commentCommands(body: string): CommentCommand[] {
  const out: CommentCommand[] = [];
  let fence: string | undefined;
  // CommonMark's indented code block: a line indented 4 columns or more starts one, unless it
  // continues a paragraph (a lazy continuation, shown as text); blank lines and further indented
  // lines continue it. `paragraph` is whether the line before was paragraph text.
  let paragraph = false;
  let code = false;
  for (const raw of body.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    const indented = indentOf(raw) >= 4;
    if (fence) {
      const close = /^(`{3,}|~{3,})$/.exec(line)?.[1];
      if (close && !indented && close[0] === fence[0] && close.length >= fence.length) fence = undefined;
      continue;
    }
    if (line === '') {
      paragraph = false;
      continue;
    }
    if (indented && (code || !paragraph)) {
      code = true;
      continue;
    }
    code = false;
    const fenceMark = indented ? undefined : /^(`{3,}|~{3,})/.exec(line)?.[1];
    if (fenceMark) {
      fence = fenceMark;
      paragraph = false;
      continue;
    }
    // A heading or a thematic break is no paragraph: an indented line after it is code.
    paragraph = !/^(#{1,6}(\s|$)|([-*_])(\s*\3){2,}$)/.test(line);
    if (line.startsWith('>')) continue;
    if (!/^\/dstack(\s|$)/.test(line)) continue;
    out.push(parseLine(line));
  }
  return out;
}

/** The columns of a line's leading spaces and tabs (a tab goes to the next multiple of 4, as in CommonMark). */
function indentOf(line: string): number {
  let columns = 0;
  for (const c of line) {
    if (c === ' ') columns++;
    else if (c === '\t') columns += 4 - (columns % 4);
    else break;
  }
  return columns;
}

function parseLine(line: string): CommentCommand {
  let words: string[];
  try {
    words = splitWords(line).slice(1);
  } catch (err) {
    return { name: 'invalid', line, error: (err as Error).message };
  }
  const [command, ...rest] = words;
  const invalid = (error: string): CommentCommand => ({ name: 'invalid', line, error });
  switch (command) {
    case undefined:
    case 'help':
      return rest.length > 0 ? invalid(`'/dstack help' takes nothing after it`) : { name: 'help', line };
    case 'run': {
      const [workflow, ...args] = rest;
      if (workflow === undefined) return invalid(`'/dstack run' needs a workflow: /dstack run WORKFLOW [--NAME VALUE] [ARGS]`);
      if (!NAME.test(workflow)) return invalid(`invalid workflow name '${workflow}': letters, digits, '_', '.' and '-'`);
      return { name: 'run', line, workflow, words: args };
    }
    case 'stop': {
      if (rest.length > 1) return invalid(`'/dstack stop' takes one run at most: /dstack stop [RUN]`);
      const [run] = rest;
      if (run !== undefined && !RUN_NAME.test(run)) return invalid(`invalid run name '${run}': a run is named like slim-octopus-3`);
      return run === undefined ? { name: 'stop', line } : { name: 'stop', line, run };
    }
    case 'tag': {
      if (rest.length !== 2) return invalid(`'/dstack tag' needs a run and a tag: /dstack tag RUN TAG`);
      const [run, tag] = rest as [string, string];
      if (!RUN_NAME.test(run)) return invalid(`invalid run name '${run}': a run is named like slim-octopus-3`);
      if (!NAME.test(tag)) return invalid(`invalid tag '${tag}': letters, digits, '_', '.' and '-'`);
      return { name: 'tag', line, run, tag };
    }
    default:
      return invalid(`unknown command '${command}'; the commands are run, stop, tag and help ('/dstack help')`);
  }
}

/**
 * Splits a line into words as a POSIX shell does, without expanding anything: whitespace between
 * words, `'…'` literal, `"…"` with `\"`, `\\`, `\$` and `` \` `` escaped, a backslash outside quotes
 * taking the next character as is. An unclosed quote is an error.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed ' in: ${text}`);
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) j++;
        word += text[j];
      }
      if (j >= text.length) throw new Error(`unclosed " in: ${text}`);
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The reply to `/dstack help`. */
export const COMMENT_HELP = [
  `Commands, one per line of a comment, at most ${MAX_COMMANDS} (text around them is ignored, and so are quotes and code blocks):`,
  '',
  '| command | does |',
  '|---|---|',
  '| `/dstack run WORKFLOW [--NAME VALUE] [ARGS]` | runs WORKFLOW of `.dstack/` at this pull request\'s head commit (an issue: the default branch\'s); `--NAME VALUE` sets a variable, the rest is `${{ run.args }}` |',
  '| `/dstack stop [RUN]` | stops RUN, or every run started here that is still going |',
  '| `/dstack tag RUN TAG` | tags a finished run, so `depends-on: WORKFLOW:TAG` uses its artifacts |',
  '| `/dstack help` | this list |',
  '',
  'Only people with write, maintain or admin permission on the repository may run, stop or tag.',
].join('\n');
