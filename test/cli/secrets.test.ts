import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeRepo, tempDir } from '../helpers/cli.js';

const SECRET = 'tok-3f9a7c1e55d2';

describe('dstack secrets', () => {
  it('adds from stdin, lists names only, deletes, and keeps the file owner-only', async () => {
    const home = tempDir();
    const cwd = tempDir();
    const add = await cli(['secrets', 'add', 'API_TOKEN'], { cwd, home, input: `${SECRET}\n` });
    expect(add.stdout).toBe('Added secret API_TOKEN\n');
    expect((await cli(['secrets', 'add', 'API_TOKEN'], { cwd, home, input: SECRET })).stdout).toBe('Updated secret API_TOKEN\n');
    const file = path.join(home, 'secrets.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).API_TOKEN.value).toBe(SECRET);

    const list = await cli(['secrets', 'list'], { cwd, home });
    expect(list.stdout).toMatch(/^NAME +UPDATED\nAPI_TOKEN +now\n$/);
    expect(list.stdout).not.toContain(SECRET);
    expect(JSON.parse((await cli(['secrets', 'list', '--json'], { cwd, home })).stdout)).toEqual([{ name: 'API_TOKEN', updated_at: expect.any(String) }]);

    expect((await cli(['secrets', 'delete', 'API_TOKEN'], { cwd, home })).stdout).toBe('Deleted secret API_TOKEN\n');
    const again = await cli(['secrets', 'delete', 'API_TOKEN'], { cwd, home });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe("dstack: error: unknown secret 'API_TOKEN'; 'dstack secrets list' lists them\n");
    const bad = await cli(['secrets', 'add', '1BAD'], { cwd, home, input: 'x' });
    expect(bad.code).toBe(1);
    const empty = await cli(['secrets', 'add', 'EMPTY'], { cwd, home, input: '' });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("the value of secret 'EMPTY' is empty");
  });

  it('puts secrets in the environment of bash jobs and masks them in every log line, also split across chunks', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': [
        'workflows:',
        '  - name: leak',
        '    provider: bash',
        '    environment:',
        '      TOKEN: ${{ secrets.API_TOKEN }}',
        '    commands:',
        '      - echo "token is $TOKEN"',
        `      - test "\${#TOKEN}" = ${SECRET.length} && echo the-job-got-it`,
        // Prints the secret in two writes with a pause between: two log chunks.
        `      - ${JSON.stringify('printf "split: %s" "${TOKEN%????????}"; sleep 0.3; printf "%s end\\n" "${TOKEN#????????}"')}`,
        '',
      ].join('\n'),
    });
    const unknown = await cli(['run', 'leak'], { cwd, home });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      "dstack: error: .dstack/workflows.yaml:5:14: unknown secret 'API_TOKEN' in workflow 'leak'; add it with 'dstack secrets add API_TOKEN'\n",
    );
    expect(unknown.stdout).toBe('');

    await cli(['secrets', 'add', 'API_TOKEN'], { cwd, home, input: SECRET });
    const r = await cli(['run', 'leak'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('the-job-got-it');
    expect(r.stdout).toContain('token is ***');
    expect(r.stdout).toContain('split: *** end');
    expect(r.stdout).not.toContain(SECRET);
    expect(r.stdout).not.toContain(SECRET.slice(0, 8));
    const name = /^(\S+) /m.exec(r.stdout.split('\n')[1]!)![1]!;
    const logs = await cli(['logs', name], { cwd, home });
    expect(logs.stdout).toContain('split: *** end');
    // The two halves really came in two chunks: the stored log has a chunk boundary right after
    // "split: " (the index holds each chunk's end offset), and the mask spans it.
    const log = fs.readFileSync(path.join(home, 'logs', `${name}-0.log`));
    const index = fs.readFileSync(path.join(home, 'logs', `${name}-0.idx`));
    const ends = Array.from({ length: index.length / 16 }, (_, i) => index.readDoubleLE(i * 16 + 8));
    const cut = log.indexOf('split: ') + 'split: '.length;
    expect(ends).toContain(cut);
    expect(log.subarray(cut).toString().startsWith('*** end')).toBe(true);
    // Nothing under DSTACK_HOME but the secrets file holds the value: not the database, not the logs.
    const holders: string[] = [];
    const scan = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) scan(p);
        else if (fs.readFileSync(p).includes(SECRET)) holders.push(path.relative(home, p));
      }
    };
    scan(home);
    expect(holders).toEqual(['secrets.json']);
  });
});

describe('dstack secrets add at a terminal', () => {
  it('prompts without echoing the value', async () => {
    const pty = await import('node-pty');
    const { DSTACK } = await import('../helpers/cli.js');
    const home = tempDir();
    const term = pty.spawn(process.execPath, [DSTACK, 'secrets', 'add', 'TYPED'], {
      cwd: tempDir(),
      env: { ...process.env, DSTACK_HOME: home, NO_COLOR: '1' } as Record<string, string>,
    });
    let screen = '';
    term.onData((d) => (screen += d));
    const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    const deadline = Date.now() + 20_000;
    while (!screen.includes('Value of TYPED: ') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    term.write('typed-s3cret\r');
    expect(await exited).toBe(0);
    expect(screen).toContain('Added secret TYPED');
    expect(screen).not.toContain('typed-s3cret');
    expect(JSON.parse(fs.readFileSync(path.join(home, 'secrets.json'), 'utf8')).TYPED.value).toBe('typed-s3cret');
  });
});
