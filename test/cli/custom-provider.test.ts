import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeRepo, runNameOf, tempDir, writeFiles } from '../helpers/cli.js';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd }).toString().trim();

const GREET = [
  'help: Greets someone, and keeps what it said',
  'inputs:',
  '  who:',
  '    type: string',
  '    required: true',
  '    help: whom to greet',
  '  times:',
  '    type: integer',
  '    default: 2',
  '  loud:',
  '    type: boolean',
  '    default: false',
  'workflow:',
  '  provider: bash',
  '  commands:',
  '    - mkdir -p said',
  '    - for i in $(seq 1 ${{ inputs.times }}); do echo "hello ${{ inputs.who }} ($i) loud=${{ inputs.loud }} args=[${{ run.args }}]" | tee -a said/greeting.txt; done',
  '  artifacts:',
  '    - said',
  '  resources:',
  '    cpu: 1',
  '',
].join('\n');

/** A provider repository, bare as on a git server, tagged v1; `work` is a clone to push changes from. */
function providerRepo(files: Record<string, string> = { 'providers/greet.yaml': GREET }): { bare: string; work: string } {
  const work = tempDir('dstack-providers-');
  git(work, 'init', '-q');
  writeFiles(work, files);
  git(work, 'add', '-A');
  git(work, 'commit', '-qm', 'providers');
  git(work, 'tag', 'v1');
  const bare = `${tempDir('dstack-providers-')}/providers.git`;
  git(work, 'clone', '-q', '--bare', work, bare);
  git(work, 'remote', 'add', 'origin', bare);
  return { bare, work };
}

function userRepo(provider: string, extra = ''): string {
  return makeRepo({
    '.dstack/workflows.yaml': `workflows:\n  - name: hi\n    provider:\n${provider}\n${extra}`,
  });
}

describe('custom providers', () => {
  it('runs a workflow from a provider repository with its inputs and defaults, merging artifacts, and records the commit', async () => {
    const { bare: providers } = providerRepo();
    const home = tempDir();
    const cwd = userRepo(`      repo: ${providers}\n      name: greet\n      ref: v1`, '    who: world\n    times: 3\n    artifacts:\n      - extra\n');
    writeFiles(cwd, { 'extra/.keep': '' });
    const r = await cli(['run', 'hi', '--', 'a b'], { cwd, home });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello world (3) loud=false args=[a b]');
    expect(r.stdout).not.toContain('(4)');
    const name = runNameOf(r.stdout);
    const [run] = JSON.parse((await cli(['ps', '-a', '--json'], { cwd, home })).stdout);
    expect(run.jobs[0].provider).toEqual({ repo: providers, name: 'greet', ref: 'v1', commit: git(providers, 'rev-parse', 'HEAD') });
    const artifacts = JSON.parse((await cli(['artifacts', 'list', name, '--json'], { cwd, home })).stdout);
    expect(artifacts.map((a: { path: string }) => a.path)).toEqual(['extra', 'said']);
  });

  it('fetches a tag once, but a branch on every run', async () => {
    const { bare: providers, work } = providerRepo();
    const home = tempDir();
    const tagged = userRepo(`      repo: ${providers}\n      name: greet\n      ref: v1`, '    who: tag\n');
    const branch = userRepo(`      repo: ${providers}\n      name: greet\n      ref: main`, '    who: branch\n');
    expect((await cli(['run', 'hi'], { cwd: tagged, home })).code).toBe(0);
    expect((await cli(['run', 'hi'], { cwd: branch, home })).code).toBe(0);
    // A new commit on the branch is picked up by the next run of the branch.
    writeFiles(work, { 'providers/greet.yaml': GREET.replace('hello', 'howdy') });
    git(work, 'commit', '-qam', 'howdy');
    git(work, 'push', '-q', 'origin', 'main');
    expect((await cli(['run', 'hi'], { cwd: branch, home })).stdout).toContain('howdy branch');
    expect((await cli(['run', 'hi'], { cwd: tagged, home })).stdout).toContain('hello tag');
    // With the repository gone, the tag still runs from the cache; the branch cannot be fetched.
    fs.renameSync(providers, `${providers}-moved`);
    const again = await cli(['run', 'hi'], { cwd: tagged, home });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('hello tag');
    const gone = await cli(['run', 'hi'], { cwd: branch, home });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(
      /^dstack: error: \.dstack\/workflows\.yaml:4:7: cannot get provider 'greet' of workflow 'hi': git: .*\n$/,
    );
  });

  it('says what is wrong with a provider or its inputs, naming the file and line', async () => {
    const { bare: providers } = providerRepo({
      'providers/greet.yaml': GREET,
      'providers/nested.yaml': 'workflow:\n  provider:\n    repo: x\n    name: y\n',
      'providers/broken.yaml': 'workflow:\n  provider: bash\n  comands: [true]\n',
    });
    const run = async (provider: string, extra = '') => cli(['run', 'hi'], { cwd: userRepo(provider, extra), home: tempDir() });
    const head = git(providers, 'rev-parse', '--short=7', 'HEAD');
    const cases: [Promise<{ stderr: string }>, string][] = [
      [run(`      repo: ${providers}\n      name: missing`), `.dstack/workflows.yaml:4:7: cannot get provider 'missing' of workflow 'hi': ${providers} has no providers/missing.yaml at its default branch (${head}); providers there: broken, greet, nested`],
      [run(`      repo: ${providers}\n      name: greet`, '    whom: x\n'), ".dstack/workflows.yaml:6:5: unknown input 'whom' of provider 'greet' in workflow 'hi' (did you mean 'who'?); its inputs: who, times, loud"],
      [run(`      repo: ${providers}\n      name: greet`), ".dstack/workflows.yaml:4:7: workflow 'hi' is missing the input 'who' of provider 'greet' (whom to greet); add 'who:' to it"],
      [run(`      repo: ${providers}\n      name: greet`, '    who: x\n    times: three\n'), '.dstack/workflows.yaml:7:12: input \'times\' of provider \'greet\' must be an integer, got "three"'],
      [run(`      repo: ${providers}\n      name: nested`), `${providers}@${head}:providers/nested.yaml:3:5: provider 'nested' uses another custom provider, which is not allowed; its workflow must use one of: bash, python, docker, curl`],
      [run(`      repo: ${providers}\n      name: broken`), `${providers}@${head}:providers/broken.yaml:3:3: unknown key 'comands' in workflow 'hi' (did you mean 'commands'?)`],
      [run(`      repo: ${providers}\n      name: greet\n      ref: v9`, '    who: x\n'), `.dstack/workflows.yaml:4:7: cannot get provider 'greet' of workflow 'hi': ${providers} has no branch, tag or commit 'v9'`],
      [run(`      repo: ${path.join(providers, 'nope')}\n      name: greet`, '    who: x\n'), `.dstack/workflows.yaml:4:7: cannot get provider 'greet' of workflow 'hi': git: repository '${path.join(providers, 'nope')}' does not exist`],
    ];
    for (const [result, message] of cases) {
      const r = await result;
      expect(r.stderr).toBe(`dstack: error: ${message}\n`);
    }
  });

  it('describes the provider form in dstack schema', async () => {
    const schema = (await cli(['schema'], { cwd: tempDir(), home: tempDir() })).stdout;
    expect(schema).toContain('A tag, branch or commit');
    expect(schema).toContain('providers/NAME.yaml');
  });
});
