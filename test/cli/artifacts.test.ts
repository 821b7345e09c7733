import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeRepo, runNameOf, tempDir } from '../helpers/cli.js';


describe('artifacts, tags and caches', () => {
  const workflows = [
    'workflows:',
    '  - name: prepare',
    '    provider: bash',
    '    commands:',
    '      - mkdir -p data/sub && echo "made by $RUN_NAME" > data/sub/file.txt',
    '    artifacts:',
    '      - data',
    '  - name: train',
    '    provider: bash',
    '    depends-on: [prepare]',
    '    commands:',
    '      - cat data/sub/file.txt',
    '      - mkdir -p model && cp data/sub/file.txt model/weights.txt',
    '    artifacts: [model]',
    '  - name: finetune',
    '    provider: bash',
    '    depends-on: ["prepare:latest"]',
    '    commands:',
    '      - cat data/sub/file.txt',
    '',
  ].join('\n');

  it('hands a dependency\'s artifacts to the dependent job at the same paths, and lists and downloads them', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const r = await cli(['run', 'train'], { cwd, home });
    expect(r.code).toBe(0);
    const name = runNameOf(r.stdout);
    expect(r.stdout).toContain(`made by ${name}`);

    const list = await cli(['artifacts', 'list', name, '--json'], { cwd, home });
    expect(JSON.parse(list.stdout)).toEqual([
      { workflow: 'prepare', path: 'data', files: 1, bytes: `made by ${name}\n`.length },
      { workflow: 'train', path: 'model', files: 1, bytes: `made by ${name}\n`.length },
    ]);
    const table = await cli(['artifacts', 'list', name], { cwd, home });
    expect(table.stdout).toMatch(/^WORKFLOW +PATH +FILES +SIZE\nprepare +data +1 +0MB\ntrain +model +1 +0MB\n$/);

    const out = tempDir();
    const dl = await cli(['artifacts', 'download', name, '-o', out], { cwd, home });
    expect(dl.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'model/weights.txt'), 'utf8')).toBe(`made by ${name}\n`);
    expect(fs.readFileSync(path.join(out, 'data/sub/file.txt'), 'utf8')).toBe(`made by ${name}\n`);

    // A second download would overwrite: refused without --force, nothing lost.
    fs.writeFileSync(path.join(out, 'model/weights.txt'), 'mine');
    fs.rmSync(path.join(out, 'data'), { recursive: true });
    const again = await cli(['artifacts', 'download', name, '-o', out], { cwd, home });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      `dstack: error: 'model/weights.txt' (artifact 'model') already exists in ${out}; use --force to overwrite it, or -o to download elsewhere\n`,
    );
    expect(fs.readFileSync(path.join(out, 'model/weights.txt'), 'utf8')).toBe('mine');
    // Nothing of the download was unpacked, not even the artifacts that would not overwrite.
    expect(fs.existsSync(path.join(out, 'data'))).toBe(false);
    const forced = await cli(['artifacts', 'download', name, '-o', out, '--force'], { cwd, home });
    expect(forced.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'model/weights.txt'), 'utf8')).toBe(`made by ${name}\n`);
  });

  it('uses the artifacts of a tagged run for depends-on wf:TAG, without running wf', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const missing = await cli(['run', 'finetune'], { cwd, home });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      "dstack: error: depends-on 'prepare:latest': unknown tag 'latest'; 'dstack tags' lists tags, 'dstack tag RUN latest' makes one\n",
    );

    const prep = await cli(['run', 'prepare'], { cwd, home });
    const tagged = runNameOf(prep.stdout);
    const tag = await cli(['tag', tagged, 'latest'], { cwd, home });
    expect(tag.stdout).toBe(`Tagged ${tagged} as latest\n`);

    const r = await cli(['run', 'finetune'], { cwd, home });
    expect(r.stdout + r.stderr).toContain(`made by ${tagged}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`made by ${tagged}`);
    const ps = JSON.parse((await cli(['ps', '--json'], { cwd, home })).stdout);
    expect(ps[0].jobs.map((j: { workflow: string }) => j.workflow)).toEqual(['finetune']);

    const tags = JSON.parse((await cli(['tags', '--json'], { cwd, home })).stdout);
    expect(tags).toEqual([{ tag: 'latest', run: tagged, workflow: 'prepare', created_at: expect.any(String) }]);
    const byTag = await cli(['artifacts', 'list', ':latest', '--json'], { cwd, home });
    expect(JSON.parse(byTag.stdout)).toHaveLength(1);

    // Moving the tag to another run, then deleting it.
    const prep2 = runNameOf((await cli(['run', 'prepare'], { cwd, home })).stdout);
    expect((await cli(['tag', prep2, 'latest'], { cwd, home })).stdout).toBe(`Moved tag latest from ${tagged} to ${prep2}\n`);
    expect((await cli(['untag', 'latest'], { cwd, home })).stdout).toBe('Deleted tag latest\n');
    const gone = await cli(['untag', 'latest'], { cwd, home });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("unknown tag 'latest'");
  });

  it('saves artifacts of a failed job too (seed 000)', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': 'workflows:\n  - name: f\n    provider: bash\n    commands:\n      - mkdir out && echo partial > out/log.txt\n      - exit 2\n    artifacts: [out]\n' });
    const r = await cli(['run', 'f'], { cwd, home });
    expect(r.code).toBe(1);
    const list = JSON.parse((await cli(['artifacts', 'list', runNameOf(r.stdout), '--json'], { cwd, home })).stdout);
    expect(list).toEqual([{ workflow: 'f', path: 'out', files: 1, bytes: 8 }]);
  });

  it('restores cached folders before a job and saves them after; prune empties them', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': [
        'workflows:',
        '  - name: cached',
        '    provider: bash',
        '    commands:',
        '      - cat data/count 2>/dev/null || echo none',
        '      - cat ~/.cache/pip/marker 2>/dev/null || echo no-marker',
        '      - mkdir -p data ~/.cache/pip && echo "$RUN_NAME" > data/count && echo "$RUN_NAME" > ~/.cache/pip/marker',
        '    cache:',
        '      - path: ./data',
        '      - path: ~/.cache/pip',
        '',
      ].join('\n'),
    });
    const first = await cli(['run', 'cached'], { cwd, home });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('none');
    expect(first.stdout).toContain('no-marker');
    const second = await cli(['run', 'cached'], { cwd, home });
    const firstName = runNameOf(first.stdout);
    expect(second.stdout.match(new RegExp(firstName, 'g'))).toHaveLength(2);

    const prune = await cli(['prune', 'cache', 'cached'], { cwd, home });
    expect(prune.stdout).toBe('Deleted 2 cached folders of cached\n');
    const third = await cli(['run', 'cached'], { cwd, home });
    expect(third.stdout).toContain('none');
    expect(third.stdout).toContain('no-marker');
  });
});
