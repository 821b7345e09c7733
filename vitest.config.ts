import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests start real processes, ptys and servers: give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The CLI tests run the built `dstack`; build once before them.
    globalSetup: ['test/global-setup.ts'],
  },
});
