import type Docker from 'dockerode';
import { DstackError } from '../../shared/errors.js';
import type { Resources } from '../../shared/workflow/types.js';
import type { RunningProvider } from '../providers/provider.js';
import { engineMessage } from './engine.js';
import { ensureImage, type RegistryAuth } from './pull.js';

/** Labels that mark a container as a dstack job's, so a restarted runner can find what it left. */
export const JOB_LABEL = 'dstack.job';
export const OWNER_LABEL = 'dstack.owner';

export interface ContainerJob {
  docker: Docker;
  image: string;
  auth?: RegistryAuth;
  /** Replaces the image's entrypoint when set. */
  entrypoint?: string[];
  /** Replaces the image's command when set. */
  cmd?: string[];
  env: Record<string, string>;
  workdir: string;
  binds: string[];
  resources: Resources;
  gpus: number[];
  ports: number[];
  labels: Record<string, string>;
  /**
   * What a stop sends first. `docker stop` sends SIGTERM, and images are written for that; jobs
   * run for isolation keep the host's semantics (SIGINT first, as Ctrl+C).
   */
  stopSignal?: NodeJS.Signals;
  output(data: Buffer): void;
}

/**
 * Runs a job in a container: pulls the image if missing, creates the container with the job's
 * mounts, limits, GPUs and ports, streams its TTY, and removes it when it ends, whatever happens.
 */
export async function runContainer(job: ContainerJob): Promise<RunningProvider> {
  const { docker } = job;
  await ensureImage(docker, job.image, job.auth, job.output);
  const uid = process.getuid?.() ?? 0;
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of job.ports) {
    exposed[`${p}/tcp`] = {};
    bindings[`${p}/tcp`] = [{ HostIp: '127.0.0.1', HostPort: String(p) }];
  }
  const r = job.resources;
  let container: Docker.Container;
  try {
    container = await docker.createContainer({
      Image: job.image,
      ...(job.entrypoint ? { Entrypoint: job.entrypoint } : {}),
      ...(job.cmd ? { Cmd: job.cmd } : {}),
      Env: Object.entries(job.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: job.workdir,
      Tty: true,
      OpenStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      // Files the job writes belong to the runner's user, so it can read and delete them.
      ...(uid !== 0 ? { User: `${uid}:${process.getgid?.() ?? uid}` } : {}),
      Labels: job.labels,
      ExposedPorts: exposed,
      HostConfig: {
        Binds: job.binds,
        // An init as PID 1 passes signals on: a shell as PID 1 would ignore SIGINT and SIGTERM.
        Init: true,
        PortBindings: bindings,
        ...(r.cpu ? { NanoCpus: Math.round(r.cpu * 1e9) } : {}),
        ...(r.memoryMiB ? { Memory: Math.round(r.memoryMiB * 1048576) } : {}),
        ...(r.shmSizeMiB ? { ShmSize: Math.round(r.shmSizeMiB * 1048576) } : {}),
        ...(job.gpus.length
          ? { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: job.gpus.map(String), Capabilities: [['gpu']] }] }
          : {}),
      },
    });
  } catch (err) {
    throw containerError(job, err);
  }
  const remove = () => container.remove({ force: true }).catch(() => {});
  let stream: NodeJS.ReadWriteStream;
  try {
    stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadWriteStream;
    stream.on('data', (d: Buffer) => job.output(d));
    await container.start();
  } catch (err) {
    await remove();
    throw containerError(job, err);
  }
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  const exited = (async () => {
    try {
      const result = (await container.wait()) as { StatusCode: number };
      // The exit is known; let the last output through before the container goes.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      return result.StatusCode;
    } finally {
      await remove();
    }
  })();
  return {
    exited,
    signal(sig) {
      // The runner stops with SIGINT, SIGTERM after the grace period, then SIGKILL. A container
      // stopped with SIGTERM first gets SIGKILL when the grace period is over, as `docker stop`.
      const send = job.stopSignal === 'SIGTERM' && sig === 'SIGINT' ? 'SIGTERM' : job.stopSignal === 'SIGTERM' && sig === 'SIGTERM' ? 'SIGKILL' : sig;
      container.kill({ signal: send }).catch(() => {});
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
  };
}

function containerError(job: ContainerJob, err: unknown): DstackError {
  const message = engineMessage(err);
  if (job.gpus.length && /device driver|nvidia|gpu/i.test(message)) {
    return new DstackError(
      'DSTACK_ERR_DOCKER',
      `this Docker engine cannot give GPUs to containers (${message}); install the NVIDIA Container Toolkit and restart the engine`,
      { cause: err },
    );
  }
  if (/port is already allocated|address already in use/i.test(message)) {
    return new DstackError('DSTACK_ERR_DOCKER', `cannot publish the job's ports: ${message}; free the port or change 'ports'`, { cause: err });
  }
  return new DstackError('DSTACK_ERR_DOCKER', `cannot start a container of '${job.image}': ${message}`, { cause: err });
}

/** Removes the containers a runner left behind (e.g. it was killed), found by label. */
export async function removeContainers(docker: Docker, labels: Record<string, string>, keep: (jobId: string) => boolean = () => false): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } });
  const removed: string[] = [];
  for (const c of list) {
    const jobId = c.Labels[JOB_LABEL] ?? '';
    if (keep(jobId)) continue;
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    removed.push(jobId);
  }
  return removed;
}
