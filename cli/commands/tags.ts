import { colorsEnabled, paint } from '../output/colors.js';
import { table } from '../output/table.js';
import { ago, iso } from '../output/time.js';
import { openLocal } from '../local/local-context.js';

export function tagCommand(runName: string, tag: string): void {
  const ctx = openLocal();
  try {
    const { moved } = ctx.service.tag(runName, tag);
    process.stdout.write(moved ? `Moved tag ${tag} from ${moved} to ${runName}\n` : `Tagged ${runName} as ${tag}\n`);
  } finally {
    ctx.close();
  }
}

export function untagCommand(tag: string): void {
  const ctx = openLocal();
  try {
    ctx.service.untag(tag);
    process.stdout.write(`Deleted tag ${tag}\n`);
  } finally {
    ctx.close();
  }
}

export function tagsCommand(opts: { json?: boolean }): void {
  const ctx = openLocal();
  try {
    const rows = ctx.service.listTags();
    if (opts.json) {
      const json = rows.map((t) => ({ tag: t.name, run: t.run_name, workflow: t.workflow, created_at: iso(t.created_at) }));
      process.stdout.write(JSON.stringify(json, null, 2) + '\n');
      return;
    }
    const color = paint(colorsEnabled());
    process.stdout.write(table(['TAG', 'RUN', 'WORKFLOW', 'CREATED'], rows.map((t) => [color('bold', t.name), t.run_name, t.workflow, ago(t.created_at)])));
  } finally {
    ctx.close();
  }
}
