import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Before the tests that run `dstack` as users do: build it, once per test run. */
export default function setup(): void {
  if (process.env.DSTACK_TEST_BUILT) return;
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  process.env.DSTACK_TEST_BUILT = '1';
}
