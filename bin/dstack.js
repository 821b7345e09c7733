#!/usr/bin/env -S node --initial-old-space-size=64
// The `dstack` command: runs the compiled CLI (built by `npm ci`/`npm install` through `prepare`).
// The old generation starts at 64 MB, as the agent's does (see bin/dstack-agent.js): a log streaming
// through a small heap would otherwise keep V8 in one full collection after another.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli-bundle/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('dstack: error: the CLI is not built; run `npm ci` (or `npm run build`) in the dstack folder\n');
  process.exit(1);
}
const { main: run } = await import(main.href);
await run();
