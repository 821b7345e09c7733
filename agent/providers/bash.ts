import type { BashSpec } from '../../shared/workflow/schema.js';
import { findPython } from '../python.js';
import type { Provider } from './provider.js';
import { pythonInShell, pythonOnHostPath } from './shell-script.js';

/** `provider: bash`: the commands in one shell; `python:` picks the interpreter on PATH. */
export const bashProvider: Provider = async (ctx) => {
  const spec = ctx.workflow.spec as BashSpec;
  const lines: string[] = [];
  if (spec.python !== undefined) {
    if (ctx.isolation === 'host') pythonOnHostPath(ctx.hostJobDir, ctx.env, await findPython(String(spec.python), ctx.env));
    else lines.push(...pythonInShell(ctx.paths.jobDir, String(spec.python), 'the image'));
  }
  return ctx.shell([...lines, ...spec.commands]);
};
