/** Programs that run their argument as shell text, by the name of their file. */
const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh', 'busybox']);

/**
 * Whether docker's `commands` are run by a shell, given the workflow's `entrypoint` (a list, or a
 * string split at whitespace): without one, `/bin/sh -c` runs them. With one, when any of its words
 * is a shell (`bash -c`, `/usr/bin/env bash -c`, `tini -- sh -c`) or holds an expression (whose
 * value could be a shell): when unsure, the commands are taken as shell text, where a value is
 * never put in as code; otherwise (`python -c`) the program gets the commands as they are.
 */
export function commandsRunByShell(entrypoint: unknown): boolean {
  const words = typeof entrypoint === 'string' ? entrypoint.trim().split(/\s+/).filter(Boolean) : Array.isArray(entrypoint) ? entrypoint.map(String) : [];
  // None (or one the schema will refuse): `/bin/sh -c`.
  if (words.length === 0) return true;
  return words.some((w) => w.includes('${{') || SHELLS.has(w.slice(w.lastIndexOf('/') + 1)));
}
