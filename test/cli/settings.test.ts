import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeRepo, tempDir } from '../helpers/cli.js';

const repo = () => makeRepo({ '.dstack/workflows.yaml': 'workflows:\n  - name: a\n    provider: bash\n    commands: [echo ran]\n' });

describe('settings are checked where they are read', () => {
  it('refuses a bad DSTACK_STOP_GRACE_SECONDS before anything runs, naming it', async () => {
    const home = tempDir();
    for (const args of [['run', 'a'], ['stop', 'some-run']]) {
      const r = await cli(args, { cwd: repo(), home, env: { DSTACK_STOP_GRACE_SECONDS: 'abc' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("dstack: error: DSTACK_STOP_GRACE_SECONDS must be a number of seconds, got 'abc'; fix or unset it\n");
      expect(r.stdout).not.toContain('ran');
    }
    const negative = await cli(['run', 'a'], { cwd: repo(), home, env: { DSTACK_STOP_GRACE_SECONDS: '-1' } });
    expect(negative.stderr).toBe("dstack: error: DSTACK_STOP_GRACE_SECONDS must be a number of seconds (0 or more), got '-1'; fix or unset it\n");
    expect((await cli(['run', 'a'], { cwd: repo(), home, env: { DSTACK_STOP_GRACE_SECONDS: '0.5' } })).code).toBe(0);
  });

  it('refuses a config.json with an unknown key or a wrong value, naming the file and key', async () => {
    const home = tempDir();
    const file = path.join(home, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ isolation: 'docker', imgae: 'x' }));
    const unknown = await cli(['config'], { cwd: repo(), home });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`dstack: error: cannot read ${file}: unknown key 'imgae'; fix it, or remove it and run 'dstack config' again\n`);
    fs.writeFileSync(file, JSON.stringify({ isolation: 'vm' }));
    const wrong = await cli(['run', 'a'], { cwd: repo(), home });
    expect(wrong.stderr).toMatch(new RegExp(`^dstack: error: cannot read ${file}: 'isolation' Invalid option: expected one of "host"\\|"docker"; fix it`));
  });

  it('says which file is damaged when secrets.json cannot be read', async () => {
    const home = tempDir();
    fs.writeFileSync(path.join(home, 'secrets.json'), '{not json', { mode: 0o600 });
    const r = await cli(['secrets', 'list'], { cwd: repo(), home });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^dstack: error: cannot read ${path.join(home, 'secrets.json')}: .*; fix the file, or move it away and add the secrets again\\n$`));
  });
});
