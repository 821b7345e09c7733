import type { RunService, RunView } from '../../app/run-service.js';
import { colorsEnabled } from '../output/colors.js';
import { runTableWriter } from '../output/run-table.js';
import { openLocal } from '../local/local-context.js';
import { runJson } from './json-views.js';

export interface PsOptions {
  all?: boolean;
  json?: boolean;
  /** `-n N`: the newest N runs, whatever their status. */
  last?: number;
}

/** Runs as `dstack ps` shows them: unfinished ones (or the newest one), `-n` newest, `-a` all. */
function* shownRuns(service: RunService, opts: PsOptions): Generator<RunView> {
  if (opts.all) return yield* service.allRuns();
  if (opts.last !== undefined) return yield* service.listRuns({ limit: opts.last });
  const live = [...service.allRuns({ live: true })];
  // With nothing running, `ps` still shows the last run, as dstack does.
  yield* live.length > 0 ? live : service.listRuns({ limit: 1 });
}

export async function psCommand(opts: PsOptions): Promise<void> {
  const ctx = openLocal();
  try {
    await ctx.sweep();
    const runs = shownRuns(ctx.service, opts);
    if (opts.json) await writeJsonArray(batches(runs, 50), (v) => runJson(v, ctx.service));
    else {
      const table = runTableWriter(colorsEnabled());
      let any = false;
      for (const page of batches(runs, 200)) {
        any = true;
        await write(table.page(page));
      }
      if (!any) await write(table.page([]));
    }
  } finally {
    ctx.close();
  }
}

function* batches<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
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
async function writeJsonArray<T>(pages: Iterable<T[]>, view: (item: T) => unknown): Promise<void> {
  let first = true;
  for (const page of pages) {
    const items = page.map((item) => '  ' + JSON.stringify(view(item), null, 2).replace(/\n/g, '\n  '));
    await write((first ? '[\n' : ',\n') + items.join(',\n'));
    first = false;
  }
  await write(first ? '[]\n' : '\n]\n');
}
