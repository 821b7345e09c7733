import { defineConfig } from 'vitest/config';

/**
 * Three projects, so each kind of test needs only what it uses:
 * - unit: pure logic and in-process parts (store, scheduler, log streaming, protocol): no build,
 *   no Docker engine (`npm run test:unit`);
 * - cli: runs the built `dstack` as users do: builds once first (`npm run test:cli`);
 * - docker: container jobs on a real engine: builds, and starts the engine and registries unless
 *   DSTACK_TEST_IMAGE says they run already (`npm run test:docker`).
 */
export default defineConfig({
  test: {
    // Tests start real processes, ptys and servers: give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: ['test/setup/temp-dirs.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/shared/**/*.test.ts', 'test/app/**/*.test.ts', 'test/agent/**/*.test.ts', 'test/cli/commands/**/*.test.ts', 'test/cli/output/**/*.test.ts', 'test/cli/client/**/*.test.ts', 'test/github-sim/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'cli',
          include: ['test/cli/*.test.ts', 'test/server/**/*.test.ts'],
          exclude: ['test/cli/docker.test.ts'],
          globalSetup: ['test/setup/build.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'docker',
          include: ['test/cli/docker.test.ts', 'test/docker/**/*.test.ts'],
          globalSetup: ['test/setup/build.ts', 'test/setup/docker.ts'],
        },
      },
    ],
  },
});
