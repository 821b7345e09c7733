import type { BashSpec } from '../../shared/workflow/schema.js';
import { findPython } from '../python.js';
import type { Provider } from './provider.js';
import { pythonOnPath, runShellScript } from './shell-script.js';

/** `provider: bash`: the commands in one shell; `python:` picks the interpreter on PATH. */
export const bashProvider: Provider = async (ctx) => {
  const spec = ctx.job.workflow.spec as BashSpec;
  if (spec.python !== undefined) pythonOnPath(ctx, findPython(String(spec.python), ctx.env));
  return runShellScript(ctx, spec.commands);
};
