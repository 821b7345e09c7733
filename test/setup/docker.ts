import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Before the container tests: a Docker engine and local registries up (`.ci/run` starts them; a
 * developer's `npm test` starts them here and stops what it started afterwards).
 */
export default function setup(): () => void {
  if (process.env.DSTACK_TEST_IMAGE) return () => {};
  const exports = execFileSync('bash', [path.join(ROOT, 'test/fixtures/docker/start.sh')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  for (const line of exports.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (m) process.env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  const started = (process.env.DSTACK_TEST_STARTED ?? '').split(' ').filter(Boolean);
  return () => {
    execFileSync('bash', [path.join(ROOT, 'test/fixtures/docker/stop.sh'), ...started], { stdio: 'inherit' });
  };
}
