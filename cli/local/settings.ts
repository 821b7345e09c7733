import { z } from 'zod';
import { readEnv, seconds } from '../../shared/config/read-env.js';

const schema = z.object({
  DSTACK_STOP_GRACE_SECONDS: seconds.default(10),
});

export interface LocalSettings {
  /** Seconds between SIGINT and SIGTERM, and again before SIGKILL, when a job is stopped. */
  stopGraceSeconds: number;
}

/** The CLI's settings from the environment, checked (see README: Environment variables). */
export function localSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  const v = readEnv(schema, env);
  return { stopGraceSeconds: v.DSTACK_STOP_GRACE_SECONDS };
}
