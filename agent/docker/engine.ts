import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
  const options = engineOptions(env);
  const { default: Dockerode } = await import('dockerode');
  const docker = new Dockerode(options);
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

/**
 * How to reach the engine named by `env` (dockerode on its own would read process.env): a unix
 * socket, or tcp:// (TLS with DOCKER_TLS_VERIFY and the certificates in DOCKER_CERT_PATH, as the
 * docker CLI does).
 */
function engineOptions(env: NodeJS.ProcessEnv): Docker.DockerOptions {
  const address = engineAddress(env);
  if (address.startsWith('unix://')) return { socketPath: address.slice('unix://'.length) };
  const tcp = /^tcp:\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(address);
  if (!tcp) {
    throw new DstackError('DSTACK_ERR_CONFIG', `DOCKER_HOST must be unix:///path/to/docker.sock or tcp://HOST:PORT, got '${address}'; fix or unset it`);
  }
  const tls = Boolean(env.DOCKER_TLS_VERIFY) && env.DOCKER_TLS_VERIFY !== '0';
  const certs = env.DOCKER_CERT_PATH || path.join(os.homedir(), '.docker');
  return {
    host: tcp[1]!.replace(/^\[|\]$/g, ''),
    port: Number(tcp[2]),
    protocol: tls ? 'https' : 'http',
    ...(tls ? { ca: fs.readFileSync(path.join(certs, 'ca.pem')), cert: fs.readFileSync(path.join(certs, 'cert.pem')), key: fs.readFileSync(path.join(certs, 'key.pem')) } : {}),
  };
}

/** The message of an engine error, without dockerode's "(HTTP code 404) unexpected - " prefix. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string };
  return (e.json?.message ?? e.message ?? String(err)).replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '').trim();
}

export function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}
