#!/usr/bin/env node
// The `dstack-agent` runner agent: runs the compiled agent (built by `npm ci`/`npm install` through `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/agent/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('dstack-agent: error: the agent is not built; run `npm ci` (or `npm run build`) in the dstack folder\n');
  process.exit(1);
}
const { main: run } = await import(main.href);
await run();
