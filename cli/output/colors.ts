import type { JobStatus } from '../../shared/job-status.js';

/** Colours in a terminal, none in a pipe; NO_COLOR and FORCE_COLOR are honoured. */
export function colorsEnabled(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, cyan: 36, dim: 2, bold: 1 } as const;
export type Color = keyof typeof CODES;

export function paint(enabled: boolean) {
  return (color: Color, text: string) => (enabled ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text);
}

export function statusColor(status: JobStatus): Color {
  switch (status) {
    case 'done':
      return 'green';
    case 'failed':
    case 'aborted':
      return 'red';
    case 'stopped':
    case 'stopping':
      return 'yellow';
    case 'submitted':
      return 'dim';
    default:
      return 'cyan';
  }
}
