import { afterAll } from 'vitest';
import { removeTempDirs } from '../helpers/cli.js';

// Every test file's temporary folders (test/helpers/cli.ts tempDir) go when the file is done.
afterAll(() => removeTempDirs());
