import { describe, expect, it } from 'vitest';
import { DstackError } from '../../../shared/errors.js';
import { Project } from '../../../shared/workflow/project.js';
import { workflowsJsonSchema } from '../../../shared/workflow/schema.js';
import { branchMatches, pushTrigger } from '../../../shared/workflow/triggers.js';
import { makeRepo } from '../../helpers/cli.js';

const WF = '.dstack/workflows.yaml';
const workflow = (on: string) => `workflows:\n  - name: train\n    provider: bash\n    commands: [echo hi]\n${on}`;

function loadError(text: string): DstackError {
  try {
    Project.load(makeRepo({ [WF]: text }));
  } catch (err) {
    expect(err).toBeInstanceOf(DstackError);
    return err as DstackError;
  }
  throw new Error('expected the workflows to be refused');
}

describe('on: push', () => {
  it('accepts push as a word, a list and a map with branch globs', () => {
    for (const [on, trigger] of [
      ['    on: push\n', {}],
      ['    on: [push]\n', {}],
      ['    on:\n      push:\n', {}],
      ['    on:\n      push:\n        branches: [main, "release/*"]\n', { branches: ['main', 'release/*'] }],
    ] as const) {
      const project = Project.load(makeRepo({ [WF]: workflow(on) }));
      expect(pushTrigger(project.triggersOf('train'))).toEqual(trigger);
    }
  });

  it('a workflow without on has no push trigger, and dstack run still resolves one that has it', () => {
    expect(pushTrigger(Project.load(makeRepo({ [WF]: workflow('') })).triggersOf('train'))).toBeUndefined();
    const project = Project.load(makeRepo({ [WF]: workflow('    on: push\n') }));
    expect(project.resolve('train').spec).toMatchObject({ commands: ['echo hi'] });
  });

  it('refuses an unknown event, naming file, line and column', () => {
    const e = loadError(workflow('    on: pull\n'));
    expect(e.code).toBe('DSTACK_ERR_WORKFLOW_INVALID');
    expect(e.message).toMatch(/^\.dstack\/workflows\.yaml:5:9: invalid 'on' in workflow 'train'/);
  });

  it('refuses an unknown key under push, with a hint', () => {
    const e = loadError(workflow('    on:\n      push:\n        branch: [main]\n'));
    expect(e.message).toBe(".dstack/workflows.yaml:7:9: unknown key 'branch' under 'on.push' in workflow 'train' (did you mean 'branches'?)");
  });

  it('refuses branches that are not a list of names', () => {
    const e = loadError(workflow('    on:\n      push:\n        branches: main\n'));
    expect(e.message).toMatch(/^\.dstack\/workflows\.yaml:7:19: invalid 'on\.push\.branches' in workflow 'train': expected a list/);
  });

  it('is in dstack schema', () => {
    const text = JSON.stringify(workflowsJsonSchema());
    expect(text).toContain('Branches (globs) whose pushes run it');
  });
});

describe('branch filters', () => {
  it('matches every branch without filters', () => {
    expect(branchMatches('feature/x', undefined)).toBe(true);
  });

  it('reads globs as GitHub Actions does', () => {
    expect(branchMatches('main', ['main'])).toBe(true);
    expect(branchMatches('mainly', ['main'])).toBe(false);
    expect(branchMatches('release/1.0', ['release/*'])).toBe(true);
    expect(branchMatches('release/1.0/hotfix', ['release/*'])).toBe(false);
    expect(branchMatches('release/1.0/hotfix', ['release/**'])).toBe(true);
    expect(branchMatches('v1', ['v?'])).toBe(true);
    expect(branchMatches('a.b', ['a?b'])).toBe(true);
    expect(branchMatches('axb', ['a.b'])).toBe(false);
  });

  it('excludes with !, the last matching pattern deciding', () => {
    expect(branchMatches('release/beta', ['release/*', '!release/beta'])).toBe(false);
    expect(branchMatches('release/1.0', ['release/*', '!release/beta'])).toBe(true);
    expect(branchMatches('release/beta', ['!release/beta', 'release/*'])).toBe(true);
  });
});
