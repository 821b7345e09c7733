#!/usr/bin/env -S node --initial-old-space-size=64
// The `dstack-agent` runner agent: runs the compiled agent (built by `npm ci`/`npm install` through `prepare`).
// Its old generation starts at 64 MB: the agent's heap is small (about 15 MB live) while a job's
// log streams through it, and with V8's default limit just above that, a fast log could keep it in
// one full collection after another (tens a second), costing the job a good part of a core.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/agent/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('dstack-agent: error: the agent is not built; run `npm ci` (or `npm run build`) in the dstack folder\n');
  process.exit(1);
}
const { main: run } = await import(main.href);
await run();
