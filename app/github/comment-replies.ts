import { MAX_COMMANDS } from './comment-commands.js';

/** What became of one command of a comment. */
export type CommandOutcome = { line: string } & (
  /** The app's answer, as is (stop, tag, help). */
  | { said: string }
  /** A run started; its own comment follows it, so the reply needs only its name. */
  | { started: string }
  | { failed: string }
  /** Not a command: why. */
  | { invalid: string }
  /** A user without write permission asked to run, stop or tag: their role. */
  | { refused: string }
);

/**
 * The one reply to a comment's commands: each command's outcome, in order (the bare answer when
 * there is one command). Undefined when every command started a run, as each run's comment answers.
 */
export function commentReply(user: string, repository: string, outcomes: CommandOutcome[]): string | undefined {
  if (outcomes.every((o) => 'started' in o)) return undefined;
  if (outcomes.length === 1) {
    const [o] = outcomes as [CommandOutcome];
    if ('said' in o) return o.said;
    if ('failed' in o) return `@${user} \`${quoteLine(o.line)}\` failed:\n\n${codeBlock(o.failed)}`;
    if ('invalid' in o) return `@${user} \`${quoteLine(o.line)}\`: ${o.invalid}`;
    if ('refused' in o) return `@${user} ${mayNot(repository)}; you have ${roleText(o.refused)} permission, so \`${quoteLine(o.line)}\` did nothing.`;
  }
  const items = outcomes.map((o, i) => {
    const text =
      'said' in o ? o.said
      : 'started' in o ? `started \`${o.started}\` (its own comment shows how it goes).`
      : 'failed' in o ? `failed:\n\n${codeBlock(o.failed)}`
      : 'invalid' in o ? o.invalid
      : `did nothing: you have ${roleText(o.refused)} permission.`;
    // A list item's further lines are indented under its text, so tables and code stay in it.
    return `${i + 1}. \`${quoteLine(o.line)}\`: ${text.replace(/\n(?=.)/g, '\n   ')}`;
  });
  const refused = outcomes.some((o) => 'refused' in o) ? ` (${mayNot(repository)})` : '';
  return [`@${user} your ${outcomes.length} commands${refused}:`, '', ...items].join('\n');
}

/** The reply to a comment with more than MAX_COMMANDS commands, none of which ran. */
export function tooManyReply(user: string, count: number): string {
  return `@${user} this comment has ${count} \`/dstack\` commands and one comment may have at most ${MAX_COMMANDS}, so none of them ran; split them over several comments.`;
}

function mayNot(repository: string): string {
  return `only people with write, maintain or admin permission on ${repository} may run, stop or tag`;
}

function roleText(role: string): string {
  return role === 'none' ? 'no' : role;
}

function codeBlock(text: string): string {
  return `\`\`\`\n${text}\n\`\`\``;
}

/** A command's line as shown inside inline code in a reply: backquotes made plain, at most 200 characters. */
export function quoteLine(line: string): string {
  return line.replace(/`/g, "'").slice(0, 200);
}
