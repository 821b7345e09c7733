import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

describe('error codes', () => {
  it('are each listed, with what to do, in docs/errors.md', () => {
    const declared = [...fs.readFileSync(path.join(ROOT, 'shared/errors.ts'), 'utf8').matchAll(/'(DSTACK_ERR_[A-Z_]+)'/g)].map((m) => m[1]);
    const documented = [...fs.readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8').matchAll(/^\| `(DSTACK_ERR_[A-Z_]+)` \|.+\|.+\|\s*$/gm)].map((m) => m[1]);
    expect(declared.length).toBeGreaterThan(10);
    expect(documented.sort()).toEqual([...declared].sort());
  });
});
