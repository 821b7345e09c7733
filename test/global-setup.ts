import { execFileSync } from 'node:child_process';

/** The CLI tests run the built `dstack`, as users do: build it once, first. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
