import { describe, expect, it } from 'vitest';
import { parseRunArgs } from '../../shared/run-args.js';

const vars = (...names: string[]) => (n: string) => names.includes(n);

describe('parseRunArgs', () => {
  it('takes --NAME VALUE and --NAME=VALUE for variables and leaves the rest to run.args', () => {
    expect(parseRunArgs(['--gpu', '2', '--epoch=100', '--batch-size', '32', 'x y'], vars('gpu', 'epoch'))).toEqual({
      detach: false,
      overrides: { gpu: '2', epoch: '100' },
      args: ['--batch-size', '32', 'x y'],
    });
  });

  it('recognises -d and --detach, and passes everything after -- through', () => {
    expect(parseRunArgs(['-d', '--lr', '0.1', '--', '-d', '--gpu', '1'], vars('gpu'))).toEqual({
      detach: true,
      overrides: {},
      args: ['--lr', '0.1', '-d', '--gpu', '1'],
    });
  });

  it('keeps a trailing variable flag without a value as an argument', () => {
    expect(parseRunArgs(['--gpu'], vars('gpu')).args).toEqual(['--gpu']);
  });
});
