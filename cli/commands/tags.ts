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
    const rows = ctx.service.store.listTags().map((t) => ({ tag: t, run: ctx.service.view(t.run_name) }));
    if (opts.json) {
      const json = rows.map(({ tag, run }) => ({ tag: tag.name, run: tag.run_name, workflow: run.run.workflow, created_at: iso(tag.created_at) }));
      process.stdout.write(JSON.stringify(json, null, 2) + '\n');
      return;
    }
    const color = paint(colorsEnabled());
    process.stdout.write(table(['TAG', 'RUN', 'WORKFLOW', 'CREATED'], rows.map(({ tag, run }) => [color('bold', tag.name), tag.run_name, run.run.workflow, ago(tag.created_at)])));
  } finally {
    ctx.close();
  }
}
