import path from 'node:path';
import { shellQuote } from '../../shared/shell-quote.js';
import type { PythonSpec } from '../../shared/workflow/schema.js';
import { findPython } from '../python.js';
import type { Provider } from './provider.js';
import { pythonOnPath, runShellScript } from './shell-script.js';

/**
 * `provider: python`: the script with its arguments, by the interpreter for `python:`; with
 * `requirements`, in a virtualenv of the job's own so the machine's packages stay untouched.
 */
export const pythonProvider: Provider = async (ctx) => {
  const spec = ctx.job.workflow.spec as PythonSpec;
  const interpreter = findPython(spec.python === undefined ? undefined : String(spec.python), ctx.env);
  const lines: string[] = [];
  let python = shellQuote(interpreter);
  if (spec.requirements !== undefined) {
    const venv = path.join(ctx.jobDir, 'venv');
    lines.push(`${python} -m venv ${shellQuote(venv)}`);
    python = shellQuote(path.join(venv, 'bin', 'python'));
    const args = typeof spec.requirements === 'string' ? ['-r', spec.requirements] : spec.requirements;
    if (args.length > 0) lines.push(`${python} -m pip install --disable-pip-version-check ${args.map(shellQuote).join(' ')}`);
    ctx.env.VIRTUAL_ENV = venv;
    ctx.env.PATH = `${path.join(venv, 'bin')}:${ctx.env.PATH ?? ''}`;
  } else {
    pythonOnPath(ctx, interpreter);
  }
  // The script is written as the user would type it after `python`, arguments and all.
  lines.push(`exec ${python} ${spec.script}`);
  return runShellScript(ctx, lines);
};
