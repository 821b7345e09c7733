import type Docker from 'dockerode';
import { DstackError } from '../../shared/errors.js';
import { engineMessage, statusCode } from './engine.js';

export interface RegistryAuth {
  username: string;
  password: string;
}

/**
 * Makes sure `image` is on the engine, pulling it only when missing. Progress goes to the job's
 * log as one bar that redraws itself; a failed pull says why: not found, unauthorized, or no
 * network.
 */
export async function ensureImage(docker: Docker, image: string, auth: RegistryAuth | undefined, out: (d: Buffer) => void): Promise<void> {
  try {
    await docker.getImage(image).inspect();
    return;
  } catch (err) {
    if (statusCode(err) !== 404) throw pullError(image, err);
  }
  const write = (s: string) => out(Buffer.from(s));
  write(`Pulling ${image}\r\n`);
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(image, auth ? { authconfig: { username: auth.username, password: auth.password, serveraddress: registryOf(image) } } : {});
  } catch (err) {
    throw pullError(image, err);
  }
  const layers = new Map<string, { current: number; total: number }>();
  let last = 0;
  const render = (final: boolean) => {
    let current = 0;
    let total = 0;
    for (const l of layers.values()) {
      current += l.current;
      total += l.total;
    }
    const pct = total ? Math.min(100, Math.floor((current / total) * 100)) : final ? 100 : 0;
    const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
    const sizes = total ? ` ${(current / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MB` : '';
    write(`\r[${bar}] ${String(pct).padStart(3)}%${sizes}${final ? '\r\n' : ''}`);
  };
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(pullError(image, err)) : resolve()),
      (event: { id?: string; status?: string; error?: string; errorDetail?: { message?: string }; progressDetail?: { current?: number; total?: number } }) => {
        if (event.error) return;
        if (event.id && event.progressDetail?.total) {
          const phase = event.status === 'Extracting' ? 0.5 : 0;
          const l = layers.get(event.id) ?? { current: 0, total: 0 };
          l.total = event.progressDetail.total;
          // Downloading counts for the first half of a layer's bar, extracting for the second.
          l.current = Math.max(l.current, phase * l.total + (event.progressDetail.current ?? 0) / 2);
          layers.set(event.id, l);
        }
        if (event.id && (event.status === 'Pull complete' || event.status === 'Already exists')) {
          const l = layers.get(event.id);
          if (l) l.current = l.total;
        }
        const now = Date.now();
        if (now - last > 200) {
          last = now;
          render(false);
        }
      },
    );
  });
  for (const l of layers.values()) l.current = l.total;
  render(true);
  write(`Pulled ${image}\r\n`);
}

function registryOf(image: string): string {
  const first = image.split('/')[0]!;
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'https://index.docker.io/v1/';
}

function pullError(image: string, err: unknown): DstackError {
  const message = engineMessage(err);
  const code = statusCode(err);
  let why: string;
  if (code === 401 || code === 403 || /unauthori[sz]ed|authentication required|no basic auth credentials|denied/i.test(message)) {
    why = `the registry refused access (unauthorized): ${message}; check registry_auth (username and password)`;
  } else if (code === 404 || /not found|manifest unknown|does not exist/i.test(message)) {
    why = `the image was not found: ${message}; check its name and tag`;
  } else if (/connection refused|no such host|dial tcp|timeout|network is unreachable|i\/o timeout|EAI_AGAIN/i.test(message)) {
    why = `the registry cannot be reached (no network?): ${message}`;
  } else {
    why = message;
  }
  return new DstackError('DSTACK_ERR_DOCKER', `cannot pull image '${image}': ${why}`, { cause: err });
}
