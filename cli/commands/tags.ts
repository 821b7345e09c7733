import { openClient } from '../client/open-client.js';
import { colorsEnabled, paint } from '../output/colors.js';
import { table } from '../output/table.js';
import { ago, iso } from '../output/time.js';

export async function tagCommand(runName: string, tag: string): Promise<void> {
  const client = await openClient();
  try {
    const { moved } = await client.tag(runName, tag);
    process.stdout.write(moved ? `Moved tag ${tag} from ${moved} to ${runName}\n` : `Tagged ${runName} as ${tag}\n`);
  } finally {
    client.close();
  }
}

export async function untagCommand(tag: string): Promise<void> {
  const client = await openClient();
  try {
    await client.untag(tag);
    process.stdout.write(`Deleted tag ${tag}\n`);
  } finally {
    client.close();
  }
}

export async function tagsCommand(opts: { json?: boolean }): Promise<void> {
  const client = await openClient();
  try {
    const rows = await client.listTags();
    if (opts.json) {
      const json = rows.map((t) => ({ tag: t.name, run: t.run_name, workflow: t.workflow, created_at: iso(t.created_at) }));
      process.stdout.write(JSON.stringify(json, null, 2) + '\n');
      return;
    }
    const color = paint(colorsEnabled());
    process.stdout.write(table(['TAG', 'RUN', 'WORKFLOW', 'CREATED'], rows.map((t) => [color('bold', t.name), t.run_name, t.workflow, ago(t.created_at)])));
  } finally {
    client.close();
  }
}
