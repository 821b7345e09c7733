import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach } from 'vitest';
import { FIXTURE_BIN, ROOT, waitFor } from './cli.js';

export const APP = path.join(ROOT, 'bin/dstack-app.js');
export const AGENT = path.join(ROOT, 'bin/dstack-agent.js');

export interface Proc {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr together. */
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<number | null>;
}

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts a process that is killed after the test, whatever happens. */
export function startProcess(args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Proc {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Runs `dstack-app ARGS` to its end. */
export async function app(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [APP, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** `dstack-app token create`: the new token's id and secret. */
export async function createToken(dataDir: string, owner: string, kind: 'agent' | 'user'): Promise<{ id: string; token: string }> {
  const r = await app(['token', 'create', '--owner', owner, `--${kind}`], { DSTACK_DATA_DIR: dataDir });
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  const lines = r.stdout.trimEnd().split('\n');
  return { id: /token (tok_[0-9a-f]+) /.exec(lines[0]!)![1]!, token: lines.at(-1)! };
}

export interface ServerProc extends Proc {
  url: string;
  port: number;
}

/** Starts `dstack-app` on `port` (0: any free one); resolves once it listens. */
export async function startServer(dataDir: string, env: NodeJS.ProcessEnv = {}, port = 0): Promise<ServerProc> {
  const proc = startProcess([APP], { PORT: String(port), DSTACK_DATA_DIR: dataDir, ...env });
  const url = await waitFor(() => /listening on (http:\/\/\S+) /.exec(proc.output())?.[1] ?? (proc.child.exitCode !== null ? 'exited' : ''), 20_000, 'the server to listen');
  if (url === 'exited') throw new Error(`dstack-app exited: ${proc.output()}`);
  return { ...proc, url, port: Number(new URL(url).port) };
}

export interface AgentOptions {
  url: string;
  /** The token itself (on the command line), or `{ file }`: `--token-file FILE`. */
  token: string | { file: string };
  name: string;
  workDir: string;
  labels?: string[];
  /** Extra command-line options. */
  args?: string[];
  /** Extra environment; PATH gets the fake nvidia-smi first unless `gpus` is false. */
  env?: NodeJS.ProcessEnv;
  /** The fake nvidia-smi's GPUs (FAKE_GPUS); none when omitted. */
  gpus?: string;
}

/** Starts `dstack-agent`; resolves once it says it is connected. */
export async function startAgent(options: AgentOptions): Promise<Proc> {
  const token = typeof options.token === 'string' ? ['--token', options.token] : ['--token-file', options.token.file];
  const args = [AGENT, '--url', options.url, ...token, '--name', options.name, '--work-dir', options.workDir];
  if (options.labels?.length) args.push('--labels', options.labels.join(','));
  args.push(...(options.args ?? []));
  const env: NodeJS.ProcessEnv = { PATH: `${FIXTURE_BIN}:${process.env.PATH}`, ...options.env };
  if (options.gpus !== undefined) env.FAKE_GPUS = options.gpus;
  const proc = startProcess(args, env);
  await waitFor(() => /connected/i.test(proc.output()) || proc.child.exitCode !== null, 20_000, 'the agent to connect');
  if (proc.child.exitCode !== null) throw new Error(`dstack-agent exited: ${proc.output()}`);
  return proc;
}
