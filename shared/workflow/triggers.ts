import type { z } from 'zod';
import type { triggers } from './schema.js';

export type Triggers = z.infer<typeof triggers>;

/** A workflow's push trigger: undefined when it has none, `{}` for every branch, or its branch filters. */
export function pushTrigger(on: Triggers | undefined): { branches?: string[] } | undefined {
  if (on === undefined) return undefined;
  if (on === 'push' || Array.isArray(on)) return {};
  if (!('push' in on)) return undefined;
  return on.push?.branches ? { branches: on.push.branches } : {};
}

/**
 * Whether a push to `branch` passes the filters, as GitHub Actions reads `branches:`: `*` matches
 * within a path segment, `**` across segments, `?` one character; a pattern starting with `!`
 * excludes what it matches; the last pattern that matches decides. No filters: every branch.
 */
export function branchMatches(branch: string, patterns: readonly string[] | undefined): boolean {
  if (!patterns || patterns.length === 0) return true;
  let matched = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (globToRegExp(negated ? pattern.slice(1) : pattern).test(branch)) matched = !negated;
  }
  return matched;
}

function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}
