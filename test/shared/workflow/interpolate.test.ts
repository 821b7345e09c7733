import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DstackError } from '../../../shared/errors.js';
import { injectSecrets } from '../../../shared/secrets.js';
import { loadProvider } from '../../../shared/workflow/custom-workflow.js';
import { Project, type ResolveOptions } from '../../../shared/workflow/project.js';
import type { ResolvedWorkflow } from '../../../shared/workflow/types.js';
import { makeRepo, tempDir } from '../../helpers/cli.js';

const WF = '.dstack/workflows.yaml';

function workflows(lines: string[], more: Record<string, string> = {}): Project {
  return Project.load(makeRepo({ [WF]: ['workflows:', ...lines, ''].join('\n'), ...more }));
}

function refusal(f: () => unknown): DstackError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DstackError);
    return err as DstackError;
  }
  throw new Error('expected a refusal');
}

/** Runs a resolved shell line under bash, as the job script does, with the job's environment. */
function sh(line: string, wf: ResolvedWorkflow): string {
  return execFileSync('bash', ['--noprofile', '--norc', '-c', line], { env: { PATH: process.env.PATH, HOME: '/nonexistent', ...wf.env }, encoding: 'utf8' });
}

/** Values an attacker would send, each of which runs `touch MARKER` if the shell parses it as code. */
function payloads(marker: string): string[] {
  return [`$(touch ${marker})`, `\`touch ${marker}\``, `"; touch ${marker}; "`, `'; touch ${marker}; '`, `'`, `a\\"b`, `$HOME * ${marker}`];
}

const SHELL = [
  '  - name: inj',
  '    provider: bash',
  '    commands:',
  `      - printf '<%s>' \${{ foo }}`,
  '      - echo "[${{ foo }}]"',
  '      - echo "x${{ foo }}y" x${{ foo }}y',
];

/** Resolves `name`, runs each of its commands and checks every one printed `value` literally and ran nothing. */
function expectLiteral(p: Project, name: string, options: ResolveOptions, value: string, marker: string): void {
  const wf = p.resolve(name, options);
  const commands = (wf.spec as { commands: string[] }).commands;
  expect(commands.map((c) => sh(c, wf))).toEqual([`<${value}>`, `[${value}]\n`, `x${value}y x${value}y\n`]);
  expect(fs.existsSync(marker)).toBe(false);
}

describe('a variable in a shell command', () => {
  it('is data when it comes from the command line: bare and inside double quotes it is exactly the value, and nothing in it runs', () => {
    const marker = path.join(tempDir(), 'ran');
    const p = workflows(SHELL, { '.dstack/variables.yaml': 'variables:\n  inj:\n    foo: plain\n' });
    for (const value of payloads(marker)) expectLiteral(p, 'inj', { overrides: { foo: value } }, value, marker);
  });

  it('is data when it is a default of .dstack/variables.yaml, so local and GitHub runs agree', () => {
    const marker = path.join(tempDir(), 'ran');
    const value = `$(touch ${marker})"\`touch ${marker}\`'`;
    const p = workflows(SHELL, { '.dstack/variables.yaml': `variables:\n  global:\n    foo: ${JSON.stringify(value)}\n` });
    expectLiteral(p, 'inj', {}, value, marker);
  });

  it('refers to the value in the job environment rather than containing it, and an empty value is no word, as before', () => {
    const p = workflows(
      ['  - name: a', '    provider: bash', '    commands:', "      - printf '<%s>' a ${{ empty }} b ${{ foo-bar }} \"${{ foo_bar }}\""],
      { '.dstack/variables.yaml': 'variables:\n  a:\n    empty:\n    foo-bar: one\n    foo_bar: two\n' },
    );
    const wf = p.resolve('a');
    expect(wf.spec).toMatchObject({ commands: [`printf '<%s>' a  b "\${DSTACK_VAR_foo_bar}" "\${DSTACK_VAR_foo_bar_2}"`] });
    expect(wf.env).toEqual({ DSTACK_VAR_foo_bar: 'one', DSTACK_VAR_foo_bar_2: 'two' });
    expect(sh((wf.spec as { commands: string[] }).commands[0]!, wf)).toBe('<a><b><one><two>');
  });

  it("is data in python's script, as a word of the command line", () => {
    const marker = path.join(tempDir(), 'ran');
    const p = workflows(['  - name: py', '    provider: python', '    script: argv.py --x ${{ foo }} "--y=${{ foo }}"'], {
      '.dstack/variables.yaml': 'variables:\n  py:\n    foo: 1\n',
    });
    for (const value of payloads(marker)) {
      const wf = p.resolve('py', { overrides: { foo: value } });
      // The python provider runs `exec PYTHON SCRIPT`; printf stands in for python here.
      expect(sh(`printf '<%s>' ${(wf.spec as { script: string }).script}`, wf)).toBe(`<argv.py><--x><${value}><--y=${value}>`);
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('is refused inside single quotes, where the shell would not put it in, naming file, line and key', () => {
    const e = refusal(() => workflows(['  - name: q', '    provider: bash', '    commands:', "      - echo 'A=${{ foo }}'"], { '.dstack/variables.yaml': 'variables:\n  q:\n    foo: 1\n' }));
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_INVALID');
    expect(e.message).toBe(
      ".dstack/workflows.yaml:5:9: ${{ foo }} in 'commands' of workflow 'q' stands inside single quotes, where the shell passes it on as it is; move it out of the quotes (or into double quotes)",
    );
  });

  it('is data when it is a secret: the agent puts the value in the environment, never in the command', () => {
    const marker = path.join(tempDir(), 'ran');
    const p = workflows(['  - name: s', '    provider: bash', '    commands:', '      - echo ${{ secrets.PW }} "[${{ secrets.PW }}]"']);
    const resolved = p.resolve('s', { secrets: ['PW'] });
    expect(resolved.spec).toMatchObject({ commands: ['echo "${DSTACK_SECRET_PW}" "[${DSTACK_SECRET_PW}]"'] });
    // As the agent does when the job starts (agent/job-runner.ts).
    const value = `$(touch ${marker}) "'`;
    const wf = injectSecrets(resolved, { PW: value });
    expect(sh((wf.spec as { commands: string[] }).commands[0]!, wf)).toBe(`${value} [${value}]\n`);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('is data in a here-document, expanded as in double quotes, and a quote in a # comment opens nothing', () => {
    const marker = path.join(tempDir(), 'ran');
    const block = ['# don\'t mind this "comment', 'cat <<EOF; cat <<-"END"', '{"v": ${{ foo }}}', 'EOF', '\tlit $$HOME', '\tEND', 'echo after ${{ foo }}', ''].join('\n');
    const p = workflows(['  - name: h', '    provider: bash', '    commands:', `      - ${JSON.stringify(block)}`], { '.dstack/variables.yaml': 'variables:\n  h:\n    foo: 1\n' });
    for (const value of payloads(marker)) {
      const wf = p.resolve('h', { overrides: { foo: value } });
      expect(sh((wf.spec as { commands: string[] }).commands[0]!, wf)).toBe(`{"v": ${value}}\nlit $HOME\nafter ${value}\n`);
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it("is refused in a here-document with a quoted delimiter, which would end at a line of the value's", () => {
    const lines = (op: string) => ['  - name: h', '    provider: bash', '    commands:', `      - ${JSON.stringify(`cat ${op}\nv=\${{ foo }}\nEOF\n`)}`];
    const files = { '.dstack/variables.yaml': 'variables:\n  h:\n    foo: 1\n' };
    for (const op of ["<<'EOF'", '<< "EOF"', '<<\\EOF', '<<-E"OF"']) {
      const e = refusal(() => workflows(lines(op), files));
      expect(e.message).toBe(
        ".dstack/workflows.yaml:5:9: ${{ foo }} in 'commands' of workflow 'h' stands inside a here-document with a quoted delimiter (<<'EOF'), where the shell passes it on as it is; write the delimiter unquoted (<<EOF)",
      );
    }
    // A here-string is no here-document.
    expect(workflows(['  - name: h', '    provider: bash', '    commands:', '      - cat <<< ${{ foo }}'], files).resolve('h').spec).toMatchObject({ commands: ['cat <<< "${DSTACK_VAR_foo}"'] });
  });

  it('works in arithmetic as a number, and a value that bash would run there ([ before $ or a backtick) is refused', () => {
    const marker = path.join(tempDir(), 'ran');
    const p = workflows(['  - name: a', '    provider: bash', '    commands:', '      - echo $(( ${{ n }} + 1 )); [[ ${{ n }} -eq 2 ]] && echo two'], { '.dstack/variables.yaml': 'variables:\n  a:\n    n: 1\n' });
    const wf = p.resolve('a', { overrides: { n: '2' } });
    expect(sh((wf.spec as { commands: string[] }).commands[0]!, wf)).toBe('3\ntwo\n');
    for (const value of [`a[$(touch ${marker})]`, `a[\`touch ${marker}\`]`]) {
      const e = refusal(() => p.resolve('a', { overrides: { n: value } }));
      expect(e.code).toBe('DSTACK_ERR_USAGE');
      expect(e.message).toBe(
        `.dstack/workflows.yaml:5:9: the value of \${{ n }} in 'commands' of workflow 'a' (${JSON.stringify(value)}) has '[' before '$' or a backtick, which bash runs as code where it does arithmetic ($((…)), [[ … -eq … ]]); give a value without them`,
      );
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it("refuses a run argument that bash would run in arithmetic, naming it, when ${{ run.args }} is in a command", () => {
    const marker = path.join(tempDir(), 'ran');
    const p = workflows(['  - name: a', '    provider: bash', '    commands:', '      - echo $(( ${{ run.args }} + 1 )); [[ ${{ run.args }} -eq 2 ]] && echo two']);
    const wf = p.resolve('a', { args: ['2'] });
    expect(sh(`set -- 2; ${(wf.spec as { commands: string[] }).commands[0]!}`, wf)).toBe('3\ntwo\n');
    for (const value of [`a[$(touch ${marker})]`, `a[\`touch ${marker}\`]`]) {
      const e = refusal(() => p.resolve('a', { args: ['1', value] }));
      expect(e.code).toBe('DSTACK_ERR_USAGE');
      expect(e.message).toBe(
        `.dstack/workflows.yaml:5:9: the run argument ${JSON.stringify(value)} of \${{ run.args }} in 'commands' of workflow 'a' has '[' before '$' or a backtick, which bash runs as code where it does arithmetic ($((…)), [[ … -eq … ]]); give an argument without them`,
      );
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('refuses a value that bash would run in arithmetic when it reaches the environment, where a command may name it (indirection)', () => {
    const marker = path.join(tempDir(), 'ran');
    const value = `a[$(touch ${marker})]`;
    const files = { '.dstack/variables.yaml': 'variables:\n  a:\n    b: 1\n    foo: 0\n' };
    // The env lines, and the place and key the refusal names.
    const cases: [string[], string, string, string][] = [
      [['    env:', '      - B=${{ b }}'], '.dstack/workflows.yaml:7:9', 'env', '42\n'],
      [['    env:', '      B: ${{ b }}'], '.dstack/workflows.yaml:7:10', 'B', '42\n'],
      [['    environment:', '      B: 1+${{ b }}'], '.dstack/workflows.yaml:7:10', 'B', '43\n'],
    ];
    for (const [env, where, key, sum] of cases) {
      const p = workflows(['  - name: a', '    provider: bash', '    commands:', '      - echo $(( ${{ foo }} ))', ...env], files);
      // A harmless value in B is evaluated by name, as bash does.
      const wf = p.resolve('a', { overrides: { b: '41+1', foo: 'B' } });
      expect(sh((wf.spec as { commands: string[] }).commands[0]!, wf)).toBe(sum);
      const e = refusal(() => p.resolve('a', { overrides: { b: value, foo: 'B' } }));
      expect(e.code).toBe('DSTACK_ERR_USAGE');
      expect(e.message).toBe(
        `${where}: the value of \${{ b }} in '${key}' of workflow 'a' (${JSON.stringify(value)}) has '[' before '$' or a backtick, which bash runs as code where it does arithmetic ($((…)), [[ … -eq … ]]); give a value without them`,
      );
    }
    // The run's arguments in an environment value, likewise.
    const args = workflows(['  - name: r', '    provider: bash', '    commands: [env]', '    env:', '      - ARGS=${{ run.args }}']);
    expect(args.resolve('r', { args: ['1', '2'] }).env).toEqual({ ARGS: '1 2' });
    expect(refusal(() => args.resolve('r', { args: [value] })).message).toBe(
      `.dstack/workflows.yaml:6:9: the run argument ${JSON.stringify(value)} of \${{ run.args }} in 'env' of workflow 'r' has '[' before '$' or a backtick, which bash runs as code where it does arithmetic ($((…)), [[ … -eq … ]]); give an argument without them`,
    );
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('keeps $$ as a literal $ beside it', () => {
    const p = workflows(['  - name: a', '    provider: bash', '    commands:', '      - echo "$${{ foo }} costs $$5"'], { '.dstack/variables.yaml': 'variables:\n  a:\n    foo: 1\n' });
    expect(p.resolve('a').spec).toMatchObject({ commands: ['echo "${{ foo }} costs $5"'] });
  });
});

describe('a variable outside shell text', () => {
  const files = {
    '.dstack/variables.yaml': 'variables:\n  global:\n    foo: x\n    n: 1\n',
  };

  it('is the value as is in an environment value, an image and a URL, and takes a number where one is wanted', () => {
    const p = workflows(
      [
        '  - name: b',
        '    provider: bash',
        '    commands: [env]',
        '    env:',
        '      X: ${{ foo }}',
        '    environment:',
        '      - Y=${{ foo }}',
        '    resources:',
        '      gpu: ${{ n }}',
        '  - name: d',
        '    provider: docker',
        '    image: ${{ foo }}',
        '    entrypoint: [python, "${{ foo }}"]',
        '  - name: c',
        '    provider: curl',
        '    url: http://127.0.0.1/${{ foo }}',
        '    output: out',
      ],
      files,
    );
    const value = `$(id) "'; \`id\``;
    const b = p.resolve('b', { overrides: { foo: value, n: '2' } });
    expect(b.env).toEqual({ X: value, Y: value });
    expect(b.resources.gpu).toEqual({ count: 2 });
    expect(p.resolve('d', { overrides: { foo: value } }).spec).toMatchObject({ image: value, entrypoint: ['python', value] });
    expect(p.resolve('c', { overrides: { foo: 'a%20b' } }).spec).toMatchObject({ url: 'http://127.0.0.1/a%20b' });
  });

  it("is the value as is in docker's commands when the entrypoint is no shell, and a reference when it is one", () => {
    const value = `$(id) "'; [\`id\`]`;
    const lines = (entrypoint: string) => ['  - name: d', '    provider: docker', '    image: alpine', ...(entrypoint ? [`    entrypoint: ${entrypoint}`] : []), '    commands:', '      - print("${{ foo }}")'];
    for (const entrypoint of ['[python, -c]', 'python -c', '["/usr/bin/node", "-e"]']) {
      const wf = workflows(lines(entrypoint), files).resolve('d', { overrides: { foo: value } });
      expect(wf.spec).toMatchObject({ commands: [`print("${value}")`] });
      expect(wf.env).toEqual({});
    }
    for (const entrypoint of ['', '[/bin/bash, -c]', 'sh -ec', '[/usr/bin/env, bash, -c]', '[tini, --, /bin/sh, -c]', '["${{ foo }}", -c]']) {
      const wf = workflows(lines(entrypoint), files).resolve('d', { overrides: { foo: 'x' } });
      expect(wf.spec).toMatchObject({ commands: ['print("${DSTACK_VAR_foo}")'] });
    }
  });

  it('may not name an environment variable in an env list (BASH_ENV=… would run a file)', () => {
    const lines = ['  - name: b', '    provider: bash', '    commands: [env]', '    environment:', '      - ${{ foo }}'];
    // Refused when loading, whatever the default: a value from the command line could be any name.
    const e = refusal(() => workflows(lines, { '.dstack/variables.yaml': 'variables:\n  b:\n    foo: A=1\n' }).resolve('b', { overrides: { foo: 'BASH_ENV=/tmp/x' } }));
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_INVALID');
    expect(e.message).toBe(".dstack/workflows.yaml:6:9: ${{ foo }} in 'environment' of workflow 'b' names an environment variable, which a value may not choose; write NAME=${{ foo }}");
  });

  it("may not add words to docker's entrypoint written as one string", () => {
    const p = workflows(['  - name: d', '    provider: docker', '    image: alpine', '    entrypoint: python ${{ foo }}'], files);
    expect(p.resolve('d', { overrides: { foo: 'main.py' } }).spec).toMatchObject({ entrypoint: 'python main.py' });
    const e = refusal(() => p.resolve('d', { overrides: { foo: '-c import os' } }));
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_INVALID');
    expect(e.message).toBe(
      `.dstack/workflows.yaml:5:17: \${{ foo }} in 'entrypoint' of workflow 'd' has spaces in its value ("-c import os"), which would split it into more words of the command; write 'entrypoint' as a list, with \${{ foo }} as one item`,
    );
    // The run's arguments are words of their own there, each as typed, none split.
    const args = workflows(['  - name: d', '    provider: docker', '    image: alpine', '    entrypoint: python ${{ run.args }}']);
    expect(args.resolve('d', { args: ['-u', "it's.py"] }).spec).toMatchObject({ entrypoint: "python -u it's.py" });
    expect(refusal(() => args.resolve('d', { args: ['-u', 'a b'] })).message).toContain(`\${{ run.args }} in 'entrypoint' of workflow 'd' has spaces in its value ("a b")`);
  });
});

describe('a value from the command line', () => {
  const p = () => workflows(['  - name: a', '    provider: bash', '    commands:', '      - echo "${{ foo }}"'], { '.dstack/variables.yaml': 'variables:\n  a:\n    foo: 1\n' });

  it('is the text typed, never read as YAML: only a number as written, true and false take a type', () => {
    const project = p();
    const env = (foo: string) => project.resolve('a', { overrides: { foo } }).env;
    expect(env('007')).toEqual({ DSTACK_VAR_foo: '007' });
    expect(env('1e-3')).toEqual({ DSTACK_VAR_foo: '1e-3' });
    expect(env("'")).toEqual({ DSTACK_VAR_foo: "'" });
    expect(env('"quoted"')).toEqual({ DSTACK_VAR_foo: '"quoted"' });
    expect(env('[a, b]')).toEqual({ DSTACK_VAR_foo: '[a, b]' });
    expect(env('null')).toEqual({ DSTACK_VAR_foo: 'null' });
    expect(env('12')).toEqual({ DSTACK_VAR_foo: '12' });
  });

  it('may not hold a NUL character, which no environment can', () => {
    const e = refusal(() => p().resolve('a', { overrides: { foo: 'a\u0000b' } }));
    expect(e.code).toBe('DSTACK_ERR_USAGE');
    expect(e.message).toBe("the value of --foo has a NUL character, which a job's environment cannot hold; remove it");
  });
});

describe("a custom provider's input", () => {
  const PROVIDER = [
    'inputs:',
    '  who: {required: true}',
    '  script: {default: none}',
    'workflow:',
    '  provider: bash',
    '  commands:',
    `    - printf '<%s>' \${{ inputs.who }}`,
    '    - echo "[${{ inputs.who }}]"',
    '    - echo "script=${{ inputs.script }}"',
    '',
  ].join('\n');
  const provider = loadProvider({ repo: 'https://example.com/p.git', name: 'greet', commit: 'c'.repeat(40), text: PROVIDER, label: 'greet.yaml' });

  it('is data in the shell text of the provider, whether set literally or from a variable', () => {
    const marker = path.join(tempDir(), 'ran');
    const p = workflows(
      ['  - name: hi', '    provider:', '      repo: https://example.com/p.git', '      name: greet', '    who: ${{ foo }}', '    script: "$(touch nothing) ${{ foo }}"'],
      { '.dstack/variables.yaml': 'variables:\n  hi:\n    foo: x\n' },
    );
    for (const value of payloads(marker)) {
      const wf = p.resolve('hi', { overrides: { foo: value }, providers: new Map([['hi', provider]]) });
      const commands = (wf.spec as { commands: string[] }).commands;
      expect(commands.map((c) => sh(c, wf))).toEqual([`<${value}>`, `[${value}]\n`, `script=$(touch nothing) ${value}\n`]);
    }
    expect(fs.existsSync(marker)).toBe(false);
  });
});
