// Bundles the CLI into dist/cli-bundle/ so `dstack` starts fast: one module graph to load instead
// of hundreds of files. Native addons stay outside the bundle and load from node_modules.
import { build } from 'esbuild';

await build({
  entryPoints: { main: 'dist/cli/main.js' },
  outdir: 'dist/cli-bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  external: ['better-sqlite3', 'node-pty', 'ssh2', 'cpu-features'],
  // Bundled CommonJS modules call require(); give them one.
  banner: { js: "import { createRequire as __dstackRequire } from 'node:module'; const require = __dstackRequire(import.meta.url);" },
  logLevel: 'warning',
});
