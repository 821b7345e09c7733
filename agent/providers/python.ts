import { shellQuote } from '../../shared/shell-quote.js';
import type { PythonSpec } from '../../shared/workflow/schema.js';
import { findPython } from '../python.js';
import type { Provider } from './provider.js';
import { pythonInShell } from './shell-script.js';

/**
 * `provider: python`: the script with its arguments, by the interpreter for `python:`; with
 * `requirements`, in a virtualenv of the job's own so the machine's packages stay untouched.
 */
export const pythonProvider: Provider = async (ctx) => {
  const spec = ctx.workflow.spec as PythonSpec;
  const version = spec.python === undefined ? undefined : String(spec.python);
  const lines: string[] = [];
  let python: string;
  if (ctx.isolation === 'host') {
    python = shellQuote(await findPython(version, ctx.env));
  } else {
    lines.push(...pythonInShell(ctx.paths.jobDir, version, 'the image'));
    python = 'python';
  }
  if (spec.requirements !== undefined) {
    const venv = `${ctx.paths.jobDir}/venv`;
    lines.push(`${python} -m venv ${shellQuote(venv)}`);
    python = shellQuote(`${venv}/bin/python`);
    const args = typeof spec.requirements === 'string' ? ['-r', spec.requirements] : spec.requirements;
    if (args.length > 0) lines.push(`${python} -m pip install --disable-pip-version-check ${args.map(shellQuote).join(' ')}`);
    ctx.env.VIRTUAL_ENV = venv;
    ctx.env.PATH = `${venv}/bin:${ctx.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`;
  }
  // The script is written as the user would type it after `python`, arguments and all.
  lines.push(`exec ${python} ${spec.script}`);
  return ctx.shell(lines);
};
