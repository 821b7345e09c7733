const MASK = Buffer.from('***');

/**
 * Replaces secret values with `***` in a stream of output, also when a value arrives split across
 * chunks: the end of a chunk that could be the start of a secret is held back until the next
 * chunk (or the end) says what it is. Nothing else is delayed.
 */
export class SecretMasker {
  private readonly secrets: Buffer[];
  private held = Buffer.alloc(0);

  constructor(values: Iterable<string>) {
    // Longest first, so a secret that contains another is masked whole.
    this.secrets = [...new Set(values)].filter((v) => v.length > 0).map((v) => Buffer.from(v)).sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** Masks a chunk; returns what may be shown now. */
  write(chunk: Buffer): Buffer {
    if (!this.active) return chunk;
    const data = this.mask(this.held.length ? Buffer.concat([this.held, chunk]) : chunk);
    const keep = this.partialSuffix(data);
    this.held = Buffer.from(data.subarray(data.length - keep));
    return data.subarray(0, data.length - keep);
  }

  /** Whatever was held back, at the end of the output. */
  end(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }

  private mask(data: Buffer): Buffer {
    let out = data;
    for (const secret of this.secrets) {
      let at = out.indexOf(secret);
      if (at < 0) continue;
      const parts: Buffer[] = [];
      let from = 0;
      while (at >= 0) {
        parts.push(out.subarray(from, at), MASK);
        from = at + secret.length;
        at = out.indexOf(secret, from);
      }
      parts.push(out.subarray(from));
      out = Buffer.concat(parts);
    }
    return out;
  }

  /** The length of the longest end of `data` that is the beginning of some secret. */
  private partialSuffix(data: Buffer): number {
    let best = 0;
    for (const secret of this.secrets) {
      for (let n = Math.min(secret.length - 1, data.length); n > best; n--) {
        if (data.subarray(data.length - n).equals(secret.subarray(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
