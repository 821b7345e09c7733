import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DSTACK = path.join(ROOT, 'bin/dstack.js');
export const FIXTURE_BIN = path.join(ROOT, 'test/fixtures/bin');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const made: string[] = [];

/** A temporary folder, removed after the test file (see test/setup/temp-dirs.ts). */
export function tempDir(prefix = 'dstack-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

const toClose: { close(): void }[] = [];

/** Closes `thing` (a store, a service, a scheduler) after the test that opened it (see test/setup/temp-dirs.ts). */
export function closeAfterTest<T extends { close(): void }>(thing: T): T {
  toClose.push(thing);
  return thing;
}

export function closeOpened(): void {
  for (const thing of toClose.splice(0).reverse()) thing.close();
}

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Writes files (path → content) under a new temporary repository folder. */
export function makeRepo(files: Record<string, string>): string {
  const dir = tempDir('dstack-repo-');
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
}

export interface CliOptions {
  cwd: string;
  home: string;
  env?: Record<string, string | undefined>;
  input?: string;
}

export function cliEnv(options: CliOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.FORCE_COLOR;
  Object.assign(env, { DSTACK_HOME: options.home, NO_COLOR: '1' }, options.env);
  for (const [k, v] of Object.entries(options.env ?? {})) if (v === undefined) delete env[k];
  return env;
}

/** Starts `dstack ARGS` as a real process. */
export function startCli(args: string[], options: CliOptions): ChildProcess & { output: () => Result; exited: Promise<Result> } {
  const child = spawn(process.execPath, [DSTACK, ...args], { cwd: options.cwd, env: cliEnv(options), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const exited = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return Object.assign(child, { output: () => ({ code: child.exitCode, stdout, stderr }), exited });
}

/** Runs `dstack ARGS` to its end. */
export function cli(args: string[], options: CliOptions): Promise<Result> {
  return startCli(args, options).exited;
}

/** Waits until `check()` is truthy, polling; fails after `ms`. */
export async function waitFor<T>(check: () => T | Promise<T>, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The run name in the table `dstack run` prints first. */
export function runNameOf(stdout: string): string {
  return /^([a-z]+-[a-z]+-\d+) /m.exec(stdout.split('\n')[1]!)![1]!;
}

export interface RunJson {
  name: string;
  workflow: string;
  status: string;
  submitted_at: string;
  jobs: {
    workflow: string;
    status: string;
    reason: string | null;
    exit_code: number | null;
    gpus: number[];
    started_at: string | null;
    finished_at: string | null;
  }[];
}

/** `dstack ps -a --json`: every run, newest first. */
export async function allRuns(cwd: string, home: string): Promise<RunJson[]> {
  const r = await cli(['ps', '-a', '--json'], { cwd, home });
  if (r.code !== 0) throw new Error(`dstack ps failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as RunJson[];
}
