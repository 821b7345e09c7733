import { describe, expect, it } from 'vitest';
import { DstackError } from '../../../shared/errors.js';
import { Project } from '../../../shared/workflow/project.js';
import { workflowsJsonSchema } from '../../../shared/workflow/schema.js';
import { makeRepo } from '../../helpers/cli.js';

function load(files: Record<string, string>): Project {
  return Project.load(makeRepo(files));
}

function loadError(files: Record<string, string>): DstackError {
  try {
    load(files);
  } catch (err) {
    expect(err).toBeInstanceOf(DstackError);
    return err as DstackError;
  }
  throw new Error('expected the workflows to be refused');
}

const WF = '.dstack/workflows.yaml';

describe('workflow files', () => {
  it('reads .dstack/workflows.yaml', () => {
    const p = load({ [WF]: 'workflows:\n  - name: hello\n    provider: bash\n    commands: [echo hi]\n' });
    expect(p.workflowNames).toEqual(['hello']);
    expect(p.resolve('hello').spec).toMatchObject({ provider: 'bash', commands: ['echo hi'] });
  });

  it('merges .dstack/workflows/*.yaml with .dstack/workflows.yaml', () => {
    const p = load({
      [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: [echo a]\n',
      '.dstack/workflows/pipelines.yaml': 'workflows:\n  - name: b\n    provider: bash\n    commands: [echo b]\n',
      '.dstack/workflows/more.yml': 'workflows:\n  - name: c\n    provider: curl\n    url: http://127.0.0.1/x\n    output: x\n',
    });
    expect(p.workflowNames.sort()).toEqual(['a', 'b', 'c']);
  });

  it('accepts a single workflow written as a map under workflows (seed 000)', () => {
    const p = load({ [WF]: 'workflows:\n    name: train-mnist-args\n    provider: bash\n    commands:\n      - echo ${{ run.args }}\n' });
    const resolved = p.resolve('train-mnist-args', { args: ['--batch-size', '32'] });
    expect(resolved.spec).toMatchObject({ commands: ['echo "$@"'] });
    expect(resolved.runArgs).toEqual(['--batch-size', '32']);
  });

  it('refuses the same workflow name in two files, naming both', () => {
    const e = loadError({
      [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: [echo a]\n',
      '.dstack/workflows/x.yaml': 'workflows:\n  - name: a\n    provider: bash\n    commands: [echo b]\n',
    });
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_DUPLICATE');
    expect(e.message).toBe(
      ".dstack/workflows/x.yaml:2:11: workflow 'a' is defined twice: in .dstack/workflows.yaml:2:11 and here; rename one",
    );
  });

  it('says where YAML is broken', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n   commands: [echo a\n' });
    expect(e.code).toBe('DSTACK_ERR_YAML');
    expect(e.message).toMatch(/^\.dstack\/workflows\.yaml:4:\d+: invalid YAML: /);
    const directive = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands:\n      - %oops\n' });
    expect(directive.message).toMatch(/^\.dstack\/workflows\.yaml:5:9: invalid YAML: Plain value cannot start with directive indicator character %/);
  });

  it('refuses a YAML alias bomb as a bad file, saying where', () => {
    const levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const lines = levels.slice(1).map((l, i) => `      ${l}: &${l} [${Array(9).fill(`*${levels[i]}`).join(', ')}]`);
    const e = loadError({ [WF]: `workflows:\n  - name: a\n    provider: bash\n    commands: &a [x, x, x, x, x, x, x, x, x]\n    env:\n${lines.join('\n')}\n` });
    expect(e.code).toBe('DSTACK_ERR_YAML');
    expect(e.message).toMatch(/^\.dstack\/workflows\.yaml:\d+:\d+: invalid YAML: aliases expand to too much data \(an alias bomb\); write the values out instead of using aliases$/);
  });

  it('names an unknown key with file, line, column and the closest valid key', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    comands: [echo a]\n' });
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_INVALID');
    expect(e.message).toBe(".dstack/workflows.yaml:4:5: unknown key 'comands' in workflow 'a' (did you mean 'commands'?)");
  });

  it('names an unknown key inside resources', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: [x]\n    resources:\n      gpus: 1\n' });
    expect(e.message).toBe(".dstack/workflows.yaml:6:7: unknown key 'gpus' under 'resources' in workflow 'a' (did you mean 'gpu'?)");
  });

  it('names a value of the wrong type', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: echo a\n' });
    expect(e.message).toBe(".dstack/workflows.yaml:4:15: invalid 'commands' in workflow 'a': expected a list, got string \"echo a\"");
  });

  it('names a missing required key', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: python\n' });
    expect(e.message).toBe(".dstack/workflows.yaml:2:5: workflow 'a' is missing the required key 'script'");
  });

  it('lists the providers when one is unknown', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bahs\n' });
    expect(e.message).toBe(
      ".dstack/workflows.yaml:3:15: unknown provider 'bahs' in workflow 'a' (did you mean 'bash'?); use one of: bash, python, docker, curl",
    );
  });

  it('lists the defined workflows for an unknown one', () => {
    const p = load({ [WF]: 'workflows:\n  - name: prepare\n    provider: bash\n    commands: [x]\n  - name: train\n    provider: bash\n    commands: [x]\n' });
    expect(() => p.closure('trian')).toThrow("unknown workflow 'trian' (did you mean 'train'?); defined workflows: prepare, train");
  });

  it('prints a depends-on cycle', () => {
    const e = loadError({
      [WF]: [
        'workflows:',
        '  - name: a',
        '    provider: bash',
        '    commands: [x]',
        '    depends-on: [b]',
        '  - name: b',
        '    provider: bash',
        '    commands: [x]',
        '    depends-on: [c]',
        '  - name: c',
        '    provider: bash',
        '    commands: [x]',
        '    depends-on: [a]',
        '',
      ].join('\n'),
    });
    expect(e.code).toBe('DSTACK_ERR_DEPENDENCY_CYCLE');
    expect(e.message).toBe('.dstack/workflows.yaml:5:17: depends-on forms a cycle: a -> b -> c -> a; remove one of these dependencies');
  });

  it('refuses a dependency on an unknown workflow', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: [x]\n    depends-on:\n      - prepar\n' });
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_UNKNOWN');
    expect(e.message).toContain(".dstack/workflows.yaml:6:9: workflow 'a' depends on unknown workflow 'prepar'");
  });

  it.each([
    ['artifacts:\n      - ../outside', "artifact path '../outside' escapes the working directory", '6:9'],
    ['artifacts:\n      - path: /etc', "artifact path '/etc' escapes the working directory", '6:15'],
    ['cache:\n      - ~/../../x', "cache path '~/../../x' escapes the home folder", '6:9'],
    ['working_dir: ../..', "working_dir '../..' escapes the working directory", '5:18'],
  ])('refuses a path that escapes its folder: %s', (yaml, message, at) => {
    const e = loadError({ [WF]: `workflows:\n  - name: a\n    provider: bash\n    commands: [x]\n    ${yaml}\n` });
    expect(e.code).toBe('DSTACK_ERR_PATH_ESCAPES');
    expect(e.message).toContain(`.dstack/workflows.yaml:${at}: ${message}`);
  });

  it('keeps artifact and cache paths relative to the repository, under working_dir', () => {
    const p = load({
      [WF]: 'workflows:\n  - name: a\n    provider: bash\n    working_dir: src\n    commands: [x]\n    artifacts: [./out, {path: models/}]\n    cache: [./data, ~/.cache/pip]\n',
    });
    const wf = p.resolve('a');
    expect(wf.workingDir).toBe('src');
    expect(wf.artifacts).toEqual(['src/out', 'src/models']);
    expect(wf.cache).toEqual(['src/data', '~/.cache/pip']);
  });
});

describe('variables and interpolation', () => {
  const files = {
    [WF]: [
      'workflows:',
      '  - name: prepare',
      '    provider: python',
      '    script: prepare.py',
      '    python: 3.10',
      '    resources:',
      '      gpu: ${{ pgpu }}',
      '  - name: train',
      '    provider: bash',
      '    depends-on: [prepare]',
      '    commands:',
      '      - python train.py --seed ${{ seed }} --epochs ${{ epochs }} ${{ run.args }}',
      '      - echo ${{ run.name }} costs $$5 and $HOME stays',
      '    resources:',
      '      gpu: ${{ tgpu }}',
      '',
    ].join('\n'),
    '.dstack/variables.yaml': 'variables:\n  global:\n    seed: 1\n  prepare:\n    pgpu: 0\n  train:\n    tgpu: 1\n    epochs: 10\n',
  };

  it('makes ${{ run.args }} in a shell command refer to the arguments, never inline them as code', () => {
    const p = load({
      [WF]: [
        'workflows:',
        '  - name: a',
        '    provider: bash',
        '    commands:',
        '      - python train.py ${{ run.args }}',
        '      - echo "A=[${{ run.args }}]" \\"${{ run.args }}',
        '    env:',
        '      ARGS: ${{ run.args }}',
        '  - name: p',
        '    provider: python',
        '    script: train.py --x ${{ run.args }}',
      ].join('\n'),
    });
    const args = ['x$(echo INJ)y', "it's"];
    expect(p.resolve('a', { args }).spec).toMatchObject({
      commands: ['python train.py "$@"', 'echo "A=[${*}]" \\""$@"'],
      env: { ARGS: "'x$(echo INJ)y' 'it'\\''s'" },
    });
    expect(p.resolve('p', { args }).spec).toMatchObject({ script: 'train.py --x "$@"' });
    // Inside single quotes the shell would not expand it: the files are refused when loaded.
    const e = loadError({ [WF]: "workflows:\n  - name: q\n    provider: bash\n    commands: [\"echo 'A=${{ run.args }}'\"]\n" });
    expect(e.message).toBe(
      ".dstack/workflows.yaml:4:16: ${{ run.args }} in 'commands' of workflow 'q' stands inside single quotes, where the shell passes it on as it is; move it out of the quotes (or into double quotes)",
    );
  });

  it('takes per-workflow and global variables, keeping their types', () => {
    const p = load(files);
    expect(p.resolve('prepare').resources.gpu).toEqual({ count: 0 });
    const train = p.resolve('train', { runName: 'slim-octopus-3', args: ['--lr', '0.1 0.2'] });
    expect(train.resources.gpu).toEqual({ count: 1 });
    expect(train.spec).toMatchObject({
      commands: ['python train.py --seed "${DSTACK_VAR_seed}" --epochs "${DSTACK_VAR_epochs}" "$@"', 'echo slim-octopus-3 costs $5 and $HOME stays'],
    });
    expect(train.env).toEqual({ DSTACK_VAR_seed: '1', DSTACK_VAR_epochs: '10' });
  });

  it('keeps the python version as written (3.10, not 3.1)', () => {
    expect(load(files).resolve('prepare').spec).toMatchObject({ python: '3.10' });
  });

  it('lets --NAME VALUE override a variable', () => {
    const train = load(files).resolve('train', { overrides: { tgpu: '2', epochs: '100', seed: '2' } });
    expect(train.resources.gpu).toEqual({ count: 2 });
    expect(train.env).toEqual({ DSTACK_VAR_seed: '2', DSTACK_VAR_epochs: '100' });
  });

  it('names an unknown variable where it is used', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands:\n      - echo ${{ epoch }}\n', '.dstack/variables.yaml': 'variables:\n  a:\n    epochs: 1\n' });
    expect(e.code).toBe('DSTACK_ERR_VARIABLE_UNKNOWN');
    expect(e.message).toBe(
      ".dstack/workflows.yaml:5:9: unknown variable 'epoch' in workflow 'a' (did you mean 'epochs'?); define it in .dstack/variables.yaml under 'a' or 'global'",
    );
  });

  it('refuses a malformed variables file', () => {
    const e = loadError({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: [x]\n', '.dstack/variables.yaml': 'vars:\n  a: 1\n' });
    expect(e.message).toContain(".dstack/variables.yaml:1:1: unknown key 'vars' in .dstack/variables.yaml");
  });
});

describe('providers', () => {
  it('validates docker workflows (run in a later release)', () => {
    const p = load({ [WF]: "workflows:\n  - name: d\n    provider: docker\n    image: python:3.11\n    commands: ['echo hi']\n    resources: {cpu: 1, memory: 1GB}\n" });
    expect(p.resolve('d').resources).toMatchObject({ cpu: 1, memoryMiB: 1024 });
  });

  it('validates the custom provider form when loading, without fetching anything', () => {
    const p = load({ [WF]: 'workflows:\n  - name: c\n    provider:\n      repo: https://github.com/dstackai/dstack\n      name: python\n      ref: v1\n    script: x.py\n' });
    expect(p.workflowNames).toEqual(['c']);
    const e = loadError({ [WF]: 'workflows:\n  - name: c\n    provider:\n      repo: https://github.com/dstackai/dstack\n      nmae: python\n' });
    expect(e.message).toBe(".dstack/workflows.yaml:5:7: unknown key 'nmae' under 'provider' in workflow 'c' (did you mean 'name'?)");
  });

  it('reads gpu as a count or as {count, name, memory}', () => {
    const p = load({ [WF]: 'workflows:\n  - name: a\n    provider: bash\n    commands: [x]\n    resources:\n      gpu:\n        name: V100\n        memory: 16GB\n      interruptible: true\n' });
    expect(p.resolve('a').resources).toEqual({ gpu: { count: 1, name: 'V100', memoryMiB: 16384 }, interruptible: true, cpu: undefined, memoryMiB: undefined, shmSizeMiB: undefined });
  });

  it('has a JSON Schema generated from the same definitions', () => {
    const schema = JSON.stringify(workflowsJsonSchema());
    for (const key of ['commands', 'script', 'requirements', 'image', 'entrypoint', 'url', 'output', 'depends-on', 'shm_size', 'interruptible']) {
      expect(schema).toContain(`"${key}"`);
    }
    expect(schema).toContain('"additionalProperties":false');
  });
});
