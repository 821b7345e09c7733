import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../../cli/main.js';
import { cli, ROOT, tempDir } from '../helpers/cli.js';

/** Every command a user can type, as the program defines them (hidden ones aside). */
function commands(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands
    .filter((c) => !(c as unknown as { _hidden?: boolean })._hidden)
    .flatMap((c) => (c.commands.length > 0 ? commands(c, [...prefix, c.name()]) : [[...prefix, c.name()]]));
}
const COMMANDS = commands(buildProgram());

describe('dstack --help', () => {
  it('lists every command', async () => {
    // The commands a user can type, so that a new one cannot slip by without --help and docs.
    expect(COMMANDS.map((c) => c.join(' '))).toEqual([
      'run', 'ps', 'logs', 'stop', 'tag', 'untag', 'tags', 'artifacts list', 'artifacts download', 'config',
      'secrets add', 'secrets list', 'secrets delete', 'prune cache', 'schema',
    ]);
    const r = await cli(['--help'], { cwd: tempDir(), home: tempDir() });
    expect(r.code).toBe(0);
    for (const c of new Set(COMMANDS.map((c) => c[0]!))) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });

  it('documents every command in the README', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const c of COMMANDS) expect(readme, c.join(' ')).toContain(`dstack ${c.join(' ')}`);
  });

  it.each(COMMANDS)('answers --help for %s', async (...cmd) => {
    const r = await cli([...cmd.filter(Boolean), '--help'], { cwd: tempDir(), home: tempDir() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: dstack ${cmd.filter(Boolean).join(' ')}`);
  });

  it('lists the workflows with their help in run --help', async () => {
    const r = await cli(['run', '--help'], { cwd: path.join(ROOT, 'examples/quickstart'), home: tempDir() });
    expect(r.stdout).toMatch(/Workflows:\n {2}prepare +Generate the training data\n {2}train +Train a linear model on the prepared data\n/);
  });

  it('refuses an unknown command with a suggestion and exit code 1', async () => {
    const r = await cli(['pss'], { cwd: tempDir(), home: tempDir() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("dstack: error: unknown command 'pss'");
    expect(r.stderr).toContain('(Did you mean ps?)');
  });

  it('prints the JSON Schema of the workflow files', async () => {
    const r = await cli(['schema'], { cwd: tempDir(), home: tempDir() });
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.workflows.items.anyOf.length).toBe(5);
  });

  it('colours the status in a terminal only', async () => {
    const home = tempDir();
    const cwd = path.join(ROOT, 'examples/quickstart');
    await cli(['run', 'prepare'], { cwd, home });
    const plain = await cli(['ps'], { cwd, home });
    expect(plain.stdout).not.toContain('\x1b[');
    const coloured = await cli(['ps'], { cwd, home, env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(coloured.stdout).toContain('\x1b[32mDone\x1b[0m');
  });
});

describe('dstack run without a workflow', () => {
  it('says what is missing and lists the workflows, with exit code 1', async () => {
    const r = await cli(['run'], { cwd: path.join(ROOT, 'examples/quickstart'), home: tempDir() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^dstack: error: name the workflow to run: dstack run WORKFLOW \[ARGS\.\.\.\]\n\nWorkflows:\n {2}prepare /);
  });
});
