import { z } from 'zod';
import { DstackError } from '../../shared/errors.js';

/**
 * `value` as `schema` has it, else DSTACK_ERR_USAGE naming the first thing wrong and where
 * (`invalid WHAT at 'path': message`). Request bodies and queries go through it as they were
 * sent: a wrong type is refused, never coerced.
 */
export function checkInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = issue.path.length > 0 ? ` at '${issue.path.join('.')}'` : '';
  throw new DstackError('DSTACK_ERR_USAGE', `invalid ${what}${at}: ${issue.message}`);
}

/** A query value that is a whole number as written: `1e3`, `0x10`, `1.5` and `` are not. */
export const wholeNumber = z.string().regex(/^\d{1,15}$/, 'a whole number').transform(Number);
