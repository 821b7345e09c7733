import { isFinal } from '../../shared/job-status.js';
import { colorsEnabled } from '../output/colors.js';
import { openLocal } from '../local/local-context.js';
import { runJson } from './json-views.js';
import { runTable } from './run.js';

export async function psCommand(opts: { all?: boolean; json?: boolean }): Promise<void> {
  const ctx = openLocal();
  try {
    await ctx.sweep();
    const runs = ctx.service.listRuns();
    const shown = opts.all ? runs : runs.filter((r) => !isFinal(r.status));
    // With nothing running, `ps` still shows the last run, as dstack does.
    const views = shown.length > 0 || opts.all ? shown : runs.slice(0, 1);
    if (opts.json) process.stdout.write(JSON.stringify(views.map((v) => runJson(v, ctx.service.store)), null, 2) + '\n');
    else process.stdout.write(runTable(views, colorsEnabled()));
  } finally {
    ctx.close();
  }
}
