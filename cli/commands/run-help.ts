import { isDstackError } from '../../shared/errors.js';
import { Project } from '../../shared/workflow/project.js';
import { findRepoRoot } from '../local/repo-root.js';
import { table } from '../output/table.js';

/** The workflows of the repository here, with their `help:` lines, for `dstack run --help`. */
export function workflowsHelp(): string {
  try {
    const project = Project.load(findRepoRoot());
    const rows = project.workflowNames.map((name) => [`  ${name}`, project.help(name) ?? '']);
    return `\nWorkflows:\n${table(['', ''], rows).split('\n').slice(1).join('\n')}`;
  } catch (err) {
    return `\nWorkflows: none here (${isDstackError(err) ? err.message : String(err)})\n`;
  }
}
