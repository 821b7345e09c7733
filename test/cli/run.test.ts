import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allRuns, cli, makeRepo, ROOT, startCli, tempDir } from '../helpers/cli.js';

const bash = (name: string, commands: string[], extra = '') =>
  `  - name: ${name}\n    provider: bash\n    commands:\n${commands.map((c) => `      - ${JSON.stringify(c)}`).join('\n')}\n${extra}`;

function repo(workflows: string, more: Record<string, string> = {}) {
  return makeRepo({ '.dstack/workflows.yaml': `workflows:\n${workflows}`, ...more });
}


describe('dstack run', () => {
  it('runs the quick-start example: prepare, then train with its artifacts', async () => {
    const home = tempDir();
    const cwd = path.join(ROOT, 'examples/quickstart');
    const r = await cli(['run', 'train'], { cwd, home });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^RUN +WORKFLOW +SUBMITTED +STATUS +TAG\n[a-z]+-[a-z]+-\d+ +train +now +Submitted\n/);
    expect(r.stdout).toContain('wrote 2000 samples to data/train.csv');
    const [, w, b] = /saved checkpoint\/model\.txt: w=(\S+) b=(\S+)/.exec(r.stdout)!;
    expect(Number(w)).toBeCloseTo(3, 1);
    expect(Number(b)).toBeCloseTo(-2, 1);
    const [run] = await allRuns(cwd, home);
    expect(run!.status).toBe('done');
    expect(run!.jobs.map((j) => [j.workflow, j.status, j.exit_code])).toEqual([
      ['prepare', 'done', 0],
      ['train', 'done', 0],
    ]);
    // The user's folder is untouched: jobs ran in a copy.
    expect(fs.existsSync(path.join(cwd, 'data'))).toBe(false);
    expect(fs.existsSync(path.join(cwd, 'checkpoint'))).toBe(false);
  });

  it('passes --NAME VALUE to variables and everything else, shell-quoted, to run.args', async () => {
    const home = tempDir();
    const cwd = repo(bash('echo', ['printf "<%s>" ${{ run.args }}; echo', 'echo "epochs=${{ epochs }} run=${{ run.name }} name=$RUN_NAME"']), {
      '.dstack/variables.yaml': 'variables:\n  echo:\n    epochs: 1\n',
    });
    const r = await cli(['run', 'echo', '--epochs', '7', '--batch-size', '32', 'two words', "it's"], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("<--batch-size><32><two words><it's>");
    const name = /^(\S+-\d+) /m.exec(r.stdout.split('\n')[1]!)![1];
    expect(r.stdout).toContain(`epochs=7 run=${name} name=${name}`);
  });

  it('passes run.args as the words typed, never as code, wherever the expression stands', async () => {
    const home = tempDir();
    const cwd = repo(
      bash('args', ['echo "A=[${{ run.args }}]"', 'printf "<%s>" ${{ run.args }}; echo']) +
        '  - name: py\n    provider: python\n    script: argv.py --fixed ${{ run.args }}\n',
      { 'argv.py': 'import sys\nprint("argv=" + repr(sys.argv[1:]))\n' },
    );
    const r = await cli(['run', 'args', '--', 'x$(echo INJ)y', '`echo BQ`', '$HOME', 'a b'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('A=[x$(echo INJ)y `echo BQ` $HOME a b]');
    expect(r.stdout).toContain('<x$(echo INJ)y><`echo BQ`><$HOME><a b>');
    expect(r.stdout).not.toContain('INJ]');
    const py = await cli(['run', 'py', '--batch-size', '32', "it's 'quoted'", '*'], { cwd, home });
    expect(py.stdout).toContain(`argv=['--fixed', '--batch-size', '32', "it's 'quoted'", '*']`);
  });

  it('runs nothing of a variable set on the command line: $(…), backticks and quotes print as typed, bare and in double quotes', async () => {
    const home = tempDir();
    const marker = path.join(tempDir(), 'ran');
    const values = [`$(touch ${marker})`, `\`touch ${marker}\``, `"; touch ${marker}; "`, `'; touch ${marker}; '`, `'`];
    const commands = values.flatMap((_, i) => [`echo \${{ p${i} }}`, `echo "[\${{ p${i} }}]"`]);
    const cwd = repo(bash('inj', commands), { '.dstack/variables.yaml': `variables:\n  inj:\n${values.map((_, i) => `    p${i}: x\n`).join('')}` });
    const r = await cli(['run', 'inj', ...values.flatMap((v, i) => [`--p${i}`, v])], { cwd, home });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split(/\r?\n/);
    for (const v of values) {
      expect(lines).toContain(v);
      expect(lines).toContain(`[${v}]`);
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('stops at the first failing command and exits 1 with the exit code recorded', async () => {
    const home = tempDir();
    const cwd = repo(bash('fail', ['echo before', 'exit 3', 'echo after']));
    const r = await cli(['run', 'fail'], { cwd, home });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('before');
    expect(r.stdout).not.toContain('after');
    const [run] = await allRuns(cwd, home);
    expect(run!.status).toBe('failed');
    expect(run!.jobs[0]).toMatchObject({ status: 'failed', exit_code: 3, reason: 'exit code 3' });
    const events = (run!.jobs[0] as unknown as { events: { status: string; reason: string | null }[] }).events;
    expect(events.map((e) => e.status)).toEqual(['submitted', 'downloading', 'running', 'uploading', 'failed']);
    expect(events.at(-1)!.reason).toBe('exit code 3');
  });

  it('does not run a job whose dependency failed', async () => {
    const home = tempDir();
    const cwd = repo(bash('a', ['exit 1']) + bash('b', ['echo ran-b'], '    depends-on: [a]\n'));
    const r = await cli(['run', 'b'], { cwd, home });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('ran-b');
    const [run] = await allRuns(cwd, home);
    expect(run!.jobs[1]).toMatchObject({ workflow: 'b', status: 'failed', reason: "not run: dependency 'a' failed" });
  });

  it('runs jobs under a pty, with their own HOME and the run identity in the environment', async () => {
    const home = tempDir();
    const cwd = repo(bash('env', ['test -t 1 && echo "tty=yes"', 'echo "home=$HOME"', 'echo "job=$JOB_ID py=$PYTHONUNBUFFERED cuda=[$CUDA_VISIBLE_DEVICES]"', 'echo "x=$X"'], '    env:\n      - X=from-env\n'));
    const r = await cli(['run', 'env'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('tty=yes');
    expect(r.stdout).toMatch(new RegExp(`home=${home}/jobs/[a-z]+-[a-z]+-\\d+-0/home`));
    expect(r.stdout).toMatch(/job=[a-z]+-[a-z]+-\d+-0 py=1 cuda=\[\]/);
    expect(r.stdout).toContain('x=from-env');
  });

  it('gives the job an exact copy of the folder that respects .gitignore, also outside git', async () => {
    const home = tempDir();
    const cwd = repo(bash('ls', ['find . -type f -not -path "./.dstack/*" | sort', 'echo changed > kept.txt']), {
      '.gitignore': 'big/\n*.bin\n',
      'kept.txt': 'original\n',
      'sub/.gitignore': 'local.txt\n',
      'sub/local.txt': 'x',
      'sub/code.py': 'x',
      'big/data.csv': 'x',
      'weights.bin': 'x',
    });
    const r = await cli(['run', 'ls'], { cwd, home });
    expect(r.code).toBe(0);
    const listed = r.stdout.split(/\r?\n/).filter((l) => l.startsWith('./'));
    expect(listed).toEqual(['./.gitignore', './kept.txt', './sub/.gitignore', './sub/code.py']);
    expect(fs.readFileSync(path.join(cwd, 'kept.txt'), 'utf8')).toBe('original\n');
  });

  it("gives every job of a run the folder as submitted: one job's writes never reach another job, or your folder", async () => {
    const home = tempDir();
    const check = [
      'echo "data=$(cat data.txt) notes=$(cat notes.txt) link=$(readlink link)"',
      'test -x run.sh && echo exec-kept',
      'test ! -e gone.txt && test ! -e skip.log && echo listed-right',
    ];
    // a writes in place (through a link too), truncates, appends and changes modes: b and c, which
    // start after it, and the user's folder must see none of it.
    const write = ['echo in-place > link', ': > notes.txt', 'echo more >> data.txt', 'chmod 600 run.sh', 'rm -f untracked.txt'];
    const cwd = repo(bash('a', [...check, ...write]) + bash('b', check, '    depends-on: [a]\n') + bash('c', check, '    depends-on: [b]\n'), {
      '.gitignore': 'skip.log\n',
      'data.txt': 'original',
      'gone.txt': 'tracked, then deleted',
      'run.sh': '#!/bin/sh\n',
    });
    fs.chmodSync(path.join(cwd, 'run.sh'), 0o755);
    fs.symlinkSync('data.txt', path.join(cwd, 'link'));
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd });
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'files');
    fs.rmSync(path.join(cwd, 'gone.txt'));
    fs.writeFileSync(path.join(cwd, 'notes.txt'), 'untracked note');
    fs.writeFileSync(path.join(cwd, 'skip.log'), 'ignored');
    const r = await cli(['run', 'c'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout.match(/data=original notes=untracked note link=data.txt/g)).toHaveLength(3);
    expect(r.stdout.match(/exec-kept/g)).toHaveLength(3);
    expect(r.stdout.match(/listed-right/g)).toHaveLength(3);
    expect(fs.readFileSync(path.join(cwd, 'data.txt'), 'utf8')).toBe('original');
    expect(fs.readFileSync(path.join(cwd, 'notes.txt'), 'utf8')).toBe('untracked note');
    expect(fs.statSync(path.join(cwd, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(git('status', '--porcelain').toString()).toBe(' D gone.txt\n?? notes.txt\n');
    // Nothing of the run is left in the home once it ends.
    expect(fs.readdirSync(path.join(home, 'jobs'))).toEqual([]);
    expect(fs.readdirSync(path.join(home, 'runs'))).toEqual([]);
  });

  it('finds the repository from a folder inside it, and runs the job at the repository root', async () => {
    const home = tempDir();
    const cwd = repo(bash('where', ['pwd', 'ls']), { 'src/deep/file.txt': 'x', 'top.txt': 'y' });
    const r = await cli(['run', 'where'], { cwd: path.join(cwd, 'src/deep'), home });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/jobs\/[a-z]+-[a-z]+-\d+-0\/work\r?\n/);
    expect(r.stdout).toContain('top.txt');
  });

  it('refuses an unknown workflow with the defined ones listed, and no stack trace', async () => {
    const home = tempDir();
    const cwd = repo(bash('prepare', ['true']) + bash('train', ['true']));
    const r = await cli(['run', 'trian'], { cwd, home });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("dstack: error: unknown workflow 'trian' (did you mean 'train'?); defined workflows: prepare, train\n");
    expect(r.stdout).toBe('');
  });

  it('refuses invalid workflow files with file, line and column', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows/x.yaml': 'workflows:\n  - name: a\n    provider: bash\n    commands: [true]\n    artefacts: [out]\n' });
    const r = await cli(['run', 'a'], { cwd, home });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("dstack: error: .dstack/workflows/x.yaml:5:5: unknown key 'artefacts' in workflow 'a' (did you mean 'artifacts'?)\n");
  });

  it('says when there are no workflows', async () => {
    const r = await cli(['run', 'a'], { cwd: tempDir(), home: tempDir() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dstack: error: no workflows in .*: create \.dstack\/workflows\.yaml/);
  });
});

describe('scheduling', () => {
  it('runs independent jobs side by side, then the job that depends on both', async () => {
    const home = tempDir();
    const meet = tempDir();
    // Each of a and b waits until the other has started: they only finish if they run at once.
    const waitFor = (me: string, other: string) => [`touch ${meet}/${me}`, `for i in $(seq 1 100); do [ -e ${meet}/${other} ] && break; sleep 0.1; done`, `test -e ${meet}/${other}`, `echo ${me}-met-${other}`];
    const cwd = repo(bash('a', waitFor('a', 'b')) + bash('b', waitFor('b', 'a')) + bash('c', ['echo c-ran'], '    depends-on: [a, b]\n'));
    const r = await cli(['run', 'c'], { cwd, home });
    expect(r.stdout).toContain('a-met-b');
    expect(r.stdout).toContain('b-met-a');
    expect(r.stdout).toContain('c-ran');
    expect(r.code).toBe(0);
  });

  it("gives a job's commands standard input at end-of-file, so one that reads it does not wait forever", async () => {
    const cwd = repo(bash('reads', ['if read -r line; then echo "read [$line]"; else echo "stdin at EOF"; fi', 'cat', 'echo "cat ended"']));
    const r = await cli(['run', 'reads'], { cwd, home: tempDir() });
    expect(r.stdout).toContain('stdin at EOF');
    expect(r.stdout).toContain('cat ended');
    expect(r.code).toBe(0);
  }, 20_000);
});

describe('output', () => {
  it('keeps running and logging when the reader of its output goes away (dstack run | head)', async () => {
    const home = tempDir();
    const cwd = repo(bash('many', ['for i in $(seq 1 20000); do echo "line $i"; done', 'echo finished']));
    const child = startCli(['run', 'many'], { cwd, home });
    // Close the read end after the first output, as `head -1` does.
    child.stdout!.once('data', () => child.stdout!.destroy());
    const r = await child.exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [run] = await allRuns(cwd, home);
    expect(run!.status).toBe('done');
    const logs = await cli(['logs', run!.name], { cwd, home });
    expect(logs.stdout.split('\n').filter((l) => l.startsWith('line ')).length).toBe(20000);
    expect(logs.stdout.trimEnd().endsWith('finished')).toBe(true);
  });
});
