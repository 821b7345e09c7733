/**
 * What the server benches share: the real `dstack-app` and `dstack-agent` processes, a pushed git
 * repository, the user API, a memory sampler reading /proc, and a clean-up that removes every
 * temporary folder and kills every process started (by pid), on failure and on Ctrl+C too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { decodeLogFrame } from '../shared/log-frame.js';
import { Project } from '../shared/workflow/project.js';
import type { ResolvedWorkflow } from '../shared/workflow/types.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const APP = path.join(ROOT, 'bin/dstack-app.js');
export const AGENT = path.join(ROOT, 'bin/dstack-agent.js');
export const DSTACK = path.join(ROOT, 'bin/dstack.js');

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

export const median = (xs: number[]) => percentile(xs, 50);

/** The nearest-rank percentile. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round = (x: number, digits = 3) => +x.toFixed(digits);

/** The wall clock in nanoseconds, as `date +%s%N` prints it, to a microsecond or so. */
export const wallNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;

// Everything started is removed at exit, whatever the exit.
const dirs: string[] = [];
const children: ChildProcess[] = [];
function cleanUp(): void {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130));
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

/** Kept until it exits, to be killed at exit if it has not. */
function track(child: ChildProcess): void {
  children.push(child);
  child.once('close', () => {
    const i = children.indexOf(child);
    if (i >= 0) children.splice(i, 1);
  });
}

/** A temporary folder removed at exit. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** SIGTERM, then SIGKILL after `ms`; resolves on exit. */
  stop(ms?: number): Promise<void>;
}

export function startProcess(args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, command = process.execPath): Proc {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let out = '';
  // Only the start of what it says is kept: a long bench must not grow with its processes' chatter.
  const keep = (d: Buffer) => {
    if (out.length < 64_000) out += d.toString();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    stop: async (ms = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function waitFor<T>(fn: () => T | undefined | false, ms: number, what: string, everyMs = 20): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `dstack-app token create`: the token, its last line. */
export function createToken(dataDir: string, owner: string, kind: 'agent' | 'user'): string {
  const r = spawnSync(process.execPath, [APP, 'token', 'create', '--owner', owner, `--${kind}`], { env: { ...process.env, DSTACK_DATA_DIR: dataDir } });
  if (r.status !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return r.stdout.toString().trimEnd().split('\n').at(-1)!;
}

/** `dstack-app` on a free port; resolves with its URL once it listens. */
export async function startServer(dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<Proc & { url: string }> {
  const proc = startProcess([], { PORT: '0', DSTACK_DATA_DIR: dataDir, ...env }, ROOT, APP);
  const url = await waitFor(() => /listening on (http:\/\/\S+) /.exec(proc.output())?.[1] ?? (proc.child.exitCode !== null ? 'exited' : ''), 30_000, 'the server to listen');
  if (url === 'exited') throw new Error(`dstack-app exited: ${proc.output()}`);
  return { ...proc, url };
}

/** `dstack-agent`; resolves once it says it is connected. */
export async function startAgent(url: string, token: string, name: string, workDir: string): Promise<Proc> {
  // Run as the installed command is, by its own first line (the node options it starts with).
  const proc = startProcess(['--url', url, '--token', token, '--name', name, '--work-dir', workDir], {}, ROOT, AGENT);
  await waitFor(() => /connected/.test(proc.output()) || proc.child.exitCode !== null, 30_000, 'the agent to connect');
  if (proc.child.exitCode !== null) throw new Error(`dstack-agent exited: ${proc.output()}`);
  return proc;
}

/**
 * A git repository of `files` source-like files (a few KB each, nested folders) and the given
 * workflows, pushed to a bare repository beside it, its `origin`, as a user's would be.
 */
export function pushedRepo(work: string, files: number, workflowsYaml: string): { dir: string; bare: string; commit: string; bytes: number } {
  const dir = path.join(work, 'repo');
  const bare = path.join(work, 'origin.git');
  fs.mkdirSync(path.join(dir, '.dstack'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.dstack/workflows.yaml'), workflowsYaml);
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let bytes = 0;
  for (let i = 0; i < files; i++) {
    const folder = path.join(dir, `pkg${i % 29}`, `mod${i % 7}`);
    fs.mkdirSync(folder, { recursive: true });
    const size = Math.min(200_000, Math.round(Math.exp(7.5 + random() * 2)));
    const line = `def f${i}(x):\n    return x * ${i} + ${Math.round(random() * 1e6)}  # ${'abcdefghij'.repeat(4)}\n`;
    fs.writeFileSync(path.join(folder, `file${i}.py`), line.repeat(Math.ceil(size / line.length)).slice(0, size));
    bytes += size;
  }
  const git = (args: string[], cwd = dir) => {
    const r = spawnSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout.toString().trim();
  };
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', 'commit', '-qm', 'files']);
  git(['init', '-q', '--bare', bare], work);
  git(['remote', 'add', 'origin', bare]);
  git(['push', '-q', '-u', 'origin', 'main']);
  return { dir, bare, commit: git(['rev-parse', 'HEAD']), bytes };
}

/** The user HTTP API with a user token. */
export class Api {
  constructor(readonly url: string, readonly token: string) {}

  async json<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  async text(route: string): Promise<string> {
    const res = await fetch(`${this.url}${route}`, { headers: { authorization: `Bearer ${this.token}` } });
    return res.text();
  }

  /** POST /api/run-names, then POST /api/runs: the run's name and when the server's answer came. */
  async submit(plan: ResolvedWorkflow[], source: { repoUrl: string; commit: string }, runName?: string): Promise<{ name: string; answeredNs: bigint; view: RunAnswer }> {
    const name = runName ?? (await this.json<{ name: string }>('POST', '/api/run-names')).name;
    const view = await this.json<RunAnswer>('POST', '/api/runs', {
      name,
      repo: source.repoUrl,
      workflow: plan.at(-1)!.name,
      args: '',
      plan,
      source: { ...source, patch: null },
    });
    return { name, answeredNs: wallNs(), view };
  }

  /** Waits for the run's end (GET /api/runs/NAME/end, a minute at a time). */
  async end(name: string): Promise<RunAnswer> {
    for (;;) {
      const r = await this.json<RunAnswer & { ended: boolean }>('GET', `/api/runs/${name}/end`);
      if (r.ended) return r;
    }
  }

  /** The run with each job's status changes. */
  run(name: string): Promise<RunAnswer> {
    return this.json<RunAnswer>('GET', `/api/runs/${name}`);
  }

  /** A run's whole stored log, as `dstack logs` reads it (small logs only: it is held). */
  log(name: string): Promise<string> {
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/api/runs/${name}/logs?follow=0&frames=binary`, { headers: { authorization: `Bearer ${this.token}` } });
    const parts: Buffer[] = [];
    return new Promise((resolve, reject) => {
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary) return;
        const frame = decodeLogFrame(data);
        if (!('error' in frame)) parts.push(Buffer.from(frame.data));
      });
      ws.on('close', () => resolve(Buffer.concat(parts).toString()));
      ws.on('error', reject);
    });
  }

  /** One series of GET /metrics (`name` and its `_bucket`, `_sum`, `_count`), as numbers by label text. */
  async metric(name: string): Promise<Record<string, number>> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^(\S+?)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m && (m[1] === name || m[1]!.startsWith(`${name}_`))) out[`${m[1]}${m[2] ?? ''}`] = Number(m[3]);
    }
    return out;
  }
}

export interface RunAnswer {
  run: { name: string };
  status: string;
  jobs: { id: string; workflow: string; status: string; reason: string | null; exit_code: number | null }[];
  events?: Record<string, { status: string; reason: string | null; at: number }[]>;
}

/** The time (ms since the epoch) a job first reached `status`, from its events. */
export function eventAt(run: RunAnswer, jobId: string, status: string): number | undefined {
  return run.events?.[jobId]?.find((e) => e.status === status)?.at;
}

/** `/proc/PID/status` fields in kB. */
function procStatus(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0), hwm: Number(/VmHWM:\s+(\d+)/.exec(text)?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

/** Samples VmRSS of some processes every `everyMs` from start to stop; reports the largest, VmHWM too. */
export class MemorySampler {
  private readonly max = new Map<string, number>();
  private readonly hwm = new Map<string, number>();
  private samples = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly pids: Record<string, number>, private readonly everyMs = 50) {}

  start(): this {
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.sample();
    return this;
  }

  sample(): void {
    this.samples++;
    for (const [label, pid] of Object.entries(this.pids)) {
      const s = procStatus(pid);
      if (!s) continue;
      this.max.set(label, Math.max(this.max.get(label) ?? 0, s.rss));
      this.hwm.set(label, Math.max(this.hwm.get(label) ?? 0, s.hwm));
    }
  }

  /** Stops sampling; MB per process: the largest VmRSS sampled and the kernel's VmHWM. */
  stop(): Record<string, { max_rss_mb: number; hwm_mb: number }> & { samples: number; every_ms: number } {
    clearInterval(this.timer);
    this.sample();
    const out: Record<string, unknown> = { samples: this.samples, every_ms: this.everyMs };
    for (const label of Object.keys(this.pids)) out[label] = { max_rss_mb: Math.round((this.max.get(label) ?? 0) / 1024), hwm_mb: Math.round((this.hwm.get(label) ?? 0) / 1024) };
    return out as never;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** `dstack config --url URL --token TOKEN` in `home`: whether remote mode works in this build. */
export function configureRemote(home: string, url: string, token: string): { ok: boolean; why?: string } {
  const r = spawnSync(process.execPath, [DSTACK, 'config', '--url', url, '--token', token], { env: { ...process.env, DSTACK_HOME: home, NO_COLOR: '1' } });
  return r.status === 0 ? { ok: true } : { ok: false, why: `${r.stderr}`.trim().split('\n')[0] };
}

/**
 * CPU seconds the hypervisor has taken from this virtual machine so far, all CPUs together (the
 * `steal` column of /proc/stat, in ticks of 1/100 s); 0 where there is none to read. A run that
 * lost a lot is slower for reasons that are not its own: the benches print it beside each time.
 */
export function stolenSeconds(): number {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    return Number(cpu[8] ?? 0) / 100;
  } catch {
    return 0;
  }
}

/**
 * Runs a command to its end with stdout to `stdoutFile` (or nowhere): wall seconds, its peak
 * memory and CPU (GNU time), and the CPU stolen from the machine meanwhile. Asynchronous, so that
 * a memory sampler goes on meanwhile.
 */
export async function timed(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdoutFile?: string } = {}): Promise<{ seconds: number; maxRssMb: number; cpuSeconds: number; stolenSeconds: number }> {
  const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : 'ignore';
  const stolenBefore = stolenSeconds();
  const start = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', out, 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const stolen = stolenSeconds() - stolenBefore;
  if (typeof out === 'number') fs.closeSync(out);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr}`);
  // `time` counts the command and the children it waited for (the CLI's git, say).
  const [rss, user, sys] = stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds, maxRssMb: Math.round(rss! / 1024), cpuSeconds: user! + sys!, stolenSeconds: round(stolen, 2) };
}

/** A server with one runner agent, of owner `acme`, and a pushed repository of `files` files with these workflows. */
export async function serverWithAgent(prefix: string, files: number, workflowsYaml: string) {
  const work = tempDir(prefix);
  const dataDir = path.join(work, 'data');
  const home = path.join(work, 'home');
  const repo = pushedRepo(work, files, workflowsYaml);
  const agentToken = createToken(dataDir, 'acme', 'agent');
  const userToken = createToken(dataDir, 'acme', 'user');
  const server = await startServer(dataDir);
  const agent = await startAgent(server.url, agentToken, 'box-1', path.join(work, 'agent'));
  return {
    work,
    repo,
    server,
    agent,
    api: new Api(server.url, userToken),
    userToken,
    home,
    env: { ...process.env, DSTACK_HOME: home, NO_COLOR: '1' },
    /** Whether `dstack config --url` works in this build: the runs are then `dstack run` as typed. */
    remote: configureRemote(home, server.url, userToken),
    project: Project.load(repo.dir),
    source: { repoUrl: repo.bare, commit: repo.commit },
  };
}

export type ServerWithAgent = Awaited<ReturnType<typeof serverWithAgent>>;

/**
 * A run of `workflow` as the user runs it: the whole `dstack run WORKFLOW`, stdout to `stdoutFile`,
 * where remote mode works; else submitted over the API and waited for. Its seconds, its name,
 * the run with its events (checked done), and the CLI's peak memory.
 */
export async function runAsTyped(
  s: ServerWithAgent,
  workflow: string,
  stdoutFile: string,
): Promise<{ seconds: number; name: string; view: RunAnswer; cliRssMb: number | null; cliCpuSeconds: number | null; stolenSeconds: number | null }> {
  let seconds: number;
  let name: string;
  let cliRssMb: number | null = null;
  let cliCpuSeconds: number | null = null;
  let stolen: number | null = null;
  if (s.remote.ok) {
    const t = await timed(DSTACK, ['run', workflow], { cwd: s.repo.dir, env: s.env, stdoutFile });
    seconds = t.seconds;
    cliRssMb = t.maxRssMb;
    cliCpuSeconds = t.cpuSeconds;
    stolen = t.stolenSeconds;
    name = (await s.api.json<{ runs: { run: { name: string } }[] }>('GET', '/api/runs?limit=1')).runs[0]!.run.name;
  } else {
    const start = wallNs();
    const runName = (await s.api.json<{ name: string }>('POST', '/api/run-names')).name;
    const plan = s.project.closure(workflow).map((wf) => s.project.resolve(wf, { runName }));
    name = (await s.api.submit(plan, s.source, runName)).name;
    await s.api.end(name);
    seconds = Number(wallNs() - start) / 1e9;
  }
  const view = await s.api.run(name);
  if (view.status !== 'done') throw new Error(`run ${name} ended ${view.status}: ${view.jobs[0]?.reason}`);
  return { seconds, name, view, cliRssMb, cliCpuSeconds, stolenSeconds: stolen };
}

/** `count` pairs of `a` and `b`, interleaved, alternating which goes first so that drift hits both alike. */
export async function interleaved<A, B>(count: number, a: () => Promise<A>, b: () => Promise<B>): Promise<{ a: A[]; b: B[] }> {
  const as: A[] = [];
  const bs: B[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 1) bs.push(await b());
    as.push(await a());
    if (i % 2 === 0) bs.push(await b());
  }
  return { a: as, b: bs };
}

/** Seconds between two of a job's statuses, from its events. */
export function between(view: RunAnswer, from: string, to: string, jobId = view.jobs[0]!.id): number {
  return ((eventAt(view, jobId, to) ?? NaN) - (eventAt(view, jobId, from) ?? NaN)) / 1000;
}

export const machine = () => ({ cpus: os.availableParallelism(), node: process.version, load_average_1m: round(os.loadavg()[0]!, 2) });

/**
 * `interleaved(count, a, b)` while the server's and the agent's memory is sampled every 50 ms and
 * their CPU time counted; then both are stopped. `met` says whether each stayed under `targetMb`.
 */
export async function watchedPairs<A, B>(s: ServerWithAgent, count: number, a: () => Promise<A>, b: () => Promise<B>, targetMb: number) {
  const sampler = new MemorySampler({ server: s.server.pid, agent: s.agent.pid }, 50).start();
  const cpuBefore = { server: cpuSeconds(s.server.pid), agent: cpuSeconds(s.agent.pid) };
  const pairs = await interleaved(count, a, b);
  const memory = sampler.stop();
  const cpu = { server_s: round(cpuSeconds(s.server.pid) - cpuBefore.server, 1), agent_s: round(cpuSeconds(s.agent.pid) - cpuBefore.agent, 1) };
  await s.agent.stop();
  await s.server.stop();
  const largest = (m: { max_rss_mb: number; hwm_mb: number }) => Math.max(m.max_rss_mb, m.hwm_mb);
  return { ...pairs, cpu, memory: { ...memory, target_mb: targetMb, met: largest(memory.server) < targetMb && largest(memory.agent) < targetMb } };
}
