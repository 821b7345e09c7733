import { z } from 'zod';
import { DstackError } from '../errors.js';

/**
 * Reads settings from environment variables with a zod schema whose keys are the variables' names,
 * so every part (CLI, server, agent) checks its variables the same way: a bad value is one
 * DSTACK_ERR_CONFIG line naming the variable, what it must be, and what it was.
 */
export function readEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    // An empty variable counts as unset, as shells make it easy to set one to nothing.
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const result = schema.safeParse(picked);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const name = String(issue.path[0]);
  throw new DstackError('DSTACK_ERR_CONFIG', `${name} ${issue.message}, got '${picked[name]}'; fix or unset it`);
}

/** A number of seconds, 0 or more (`1.5` too). */
export const seconds = z.coerce
  .number({ error: 'must be a number of seconds' })
  .refine((n) => Number.isFinite(n) && n >= 0, { error: 'must be a number of seconds (0 or more)' });

/** A flag: `1`, `true`, `yes` or `on` turn it on; `0`, `false`, `no`, `off` off. */
export const flag = z
  .string()
  .transform((v) => v.toLowerCase())
  .refine((v) => ['1', 'true', 'yes', 'on', '0', 'false', 'no', 'off'].includes(v), { error: 'must be 1 or 0 (true or false)' })
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));
