import { runPages, type ClientRun, type DstackClient } from '../client/dstack-client.js';
import { openClient } from '../client/open-client.js';
import { colorsEnabled } from '../output/colors.js';
import { runTableWriter } from '../output/run-table.js';
import { runJson } from './json-views.js';

export interface PsOptions {
  all?: boolean;
  json?: boolean;
  /** `-n N`: the newest N runs, whatever their status. */
  last?: number;
}

/** Runs as `dstack ps` shows them, a page at a time: unfinished ones (or the newest one), `-n` newest, `-a` all. */
async function* shownRuns(client: DstackClient, opts: PsOptions, pageSize: number): AsyncGenerator<ClientRun[]> {
  const events = Boolean(opts.json);
  if (opts.all) return yield* runPages(client, { events }, pageSize);
  if (opts.last !== undefined) return yield* runPages(client, { events }, pageSize, opts.last);
  let any = false;
  for await (const page of runPages(client, { live: true, events }, pageSize)) {
    any = true;
    yield page;
  }
  // With nothing running, `ps` still shows the last run, as dstack does.
  if (!any) {
    const last = await client.listRuns({ limit: 1, events });
    if (last.length > 0) yield last;
  }
}

export async function psCommand(opts: PsOptions): Promise<void> {
  const client = await openClient();
  try {
    await client.sweep();
    if (opts.json) await writeJsonArray(shownRuns(client, opts, 50), runJson);
    else {
      const table = runTableWriter(colorsEnabled());
      let any = false;
      for await (const page of shownRuns(client, opts, 200)) {
        any = true;
        await write(table.page(page));
      }
      if (!any) await write(table.page([]));
    }
  } finally {
    client.close();
  }
}

/** Writes to stdout, waiting while it is full (a slow pipe), so a long listing is never held whole. */
function write(text: string): Promise<void> {
  if (text === '' || process.stdout.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      process.stdout.off('drain', done);
      process.stdout.off('error', done);
      resolve();
    };
    process.stdout.once('drain', done);
    process.stdout.once('error', done);
  });
}

/** Streams a JSON array item by item, formatted as JSON.stringify(array, null, 2) would format it. */
async function writeJsonArray<T>(pages: AsyncIterable<T[]>, view: (item: T) => unknown): Promise<void> {
  let first = true;
  for await (const page of pages) {
    const items = page.map((item) => '  ' + JSON.stringify(view(item), null, 2).replace(/\n/g, '\n  '));
    await write((first ? '[\n' : ',\n') + items.join(',\n'));
    first = false;
  }
  await write(first ? '[]\n' : '\n]\n');
}
