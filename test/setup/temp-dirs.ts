import { afterAll, afterEach } from 'vitest';
import { closeOpened, removeTempDirs } from '../helpers/cli.js';

// What a test opened (closeAfterTest) is closed after it; every test file's temporary folders
// (tempDir) go when the file is done.
afterEach(() => closeOpened());
afterAll(() => removeTempDirs());
