import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { readEnv } from '../../shared/config/read-env.js';

const schema = z.object({
  // 0 takes any free port (the one chosen is printed).
  PORT: z.coerce
    .number({ error: 'must be a port number (0-65535)' })
    .int({ error: 'must be a port number (0-65535)' })
    .min(0, { error: 'must be a port number (0-65535)' })
    .max(65535, { error: 'must be a port number (0-65535)' })
    .default(3000),
  HOST: z.string().default('127.0.0.1'),
  DSTACK_DATA_DIR: z.string().optional(),
  DSTACK_SERVER_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  DSTACK_AGENT_LOST_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds (1 or more)' })
    .min(1, { error: 'must be a number of seconds (1 or more)' })
    .default(30),
});

export interface ServerSettings {
  port: number;
  host: string;
  /** Runs, logs, archives and tokens: `DSTACK_DATA_DIR`, by default `~/.dstack-app`. */
  dataDir: string;
  /** The URL agents reach the server at, when it is not the one they connect to (a proxy): `DSTACK_SERVER_URL`. */
  publicUrl?: string;
  /** An agent silent this long is lost: `DSTACK_AGENT_LOST_SECONDS` (default 30). */
  agentLostSeconds: number;
}

/** The server's settings from its environment, checked (see README: Server). */
export function serverSettings(env: NodeJS.ProcessEnv = process.env): ServerSettings {
  const v = readEnv(schema, env);
  return {
    port: v.PORT,
    host: v.HOST,
    dataDir: path.resolve(v.DSTACK_DATA_DIR ?? path.join(os.homedir(), '.dstack-app')),
    publicUrl: v.DSTACK_SERVER_URL,
    agentLostSeconds: v.DSTACK_AGENT_LOST_SECONDS,
  };
}
