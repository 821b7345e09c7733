import type Docker from 'dockerode';
import { DstackError } from '../../shared/errors.js';

/** Where the engine is: DOCKER_HOST, else the default socket (as the docker CLI finds it). */
export function engineAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/**
 * Connects to the Docker engine and checks it answers. dockerode is imported here, on first use,
 * so runs without containers never load it.
 */
export async function connectDocker(env: NodeJS.ProcessEnv = process.env): Promise<Docker> {
  const { default: Dockerode } = await import('dockerode');
  const docker = new Dockerode();
  try {
    await docker.ping();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DstackError(
      'DSTACK_ERR_DOCKER',
      `cannot reach a Docker engine at ${engineAddress(env)} (${code}); start Docker, or set DOCKER_HOST to where it listens`,
      { cause: err },
    );
  }
  return docker;
}

/** The message of an engine error, without dockerode's "(HTTP code 404) unexpected - " prefix. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string };
  return (e.json?.message ?? e.message ?? String(err)).replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '').trim();
}

export function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}
