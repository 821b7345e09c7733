import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeRepo, tempDir } from '../helpers/cli.js';

describe('a damaged database', () => {
  it('is named, with what to do, by every command: one line, exit 1, no stack trace', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': 'workflows:\n  - name: a\n    provider: bash\n    commands: [echo hi]\n' });
    expect((await cli(['run', 'a'], { cwd, home })).code).toBe(0);
    const db = path.join(home, 'dstack.db');
    const fd = fs.openSync(db, 'r+');
    fs.writeSync(fd, Buffer.alloc(100, 'x'), 0, 100, 0);
    fs.closeSync(fd);
    for (const args of [['ps'], ['run', 'a'], ['tags'], ['logs', 'some-run']]) {
      const r = await cli(args, { cwd, home });
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toBe(
        `dstack: error: ${db} is damaged (file is not a database): move it away (mv ${db} ${db}.damaged) and run again; the runs recorded in it, and their logs and artifacts, are lost\n`,
      );
    }
    fs.renameSync(db, `${db}.damaged`);
    expect((await cli(['run', 'a'], { cwd, home })).code).toBe(0);
  });
});
