import { describe, expect, it } from 'vitest';
import { SecretMasker } from '../../agent/secret-masker.js';

function run(secrets: string[], chunks: string[]): string[] {
  const m = new SecretMasker(secrets);
  const out = chunks.map((c) => m.write(Buffer.from(c)).toString());
  out.push(m.end().toString());
  return out;
}

describe('SecretMasker', () => {
  it('masks every occurrence of a secret', () => {
    expect(run(['hunter2'], ['pw=hunter2 again hunter2\n']).join('')).toBe('pw=*** again ***\n');
  });

  it('masks a secret split across chunks, holding back only what could start one', () => {
    const out = run(['s3cr3t-value'], ['token: s3c', 'r3t-va', 'lue done\n']);
    expect(out.join('')).toBe('token: *** done\n');
    expect(out[0]).toBe('token: ');
  });

  it('delays nothing when no secret could start at the end', () => {
    expect(run(['abc'], ['xyz\n', 'ab!'])).toEqual(['xyz\n', 'ab!', '']);
  });

  it('masks the longer of two overlapping secrets whole', () => {
    expect(run(['pass', 'password123'], ['my password123 and pass\n']).join('')).toBe('my *** and ***\n');
  });

  it('passes output through untouched without secrets', () => {
    const m = new SecretMasker([]);
    const b = Buffer.from('plain');
    expect(m.write(b)).toBe(b);
  });
});
