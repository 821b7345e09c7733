import fs from 'node:fs';
import path from 'node:path';
import { shellJoin, shellQuote } from '../../shared/shell-quote.js';
import { spawnPty, type RunAs } from '../pty-process.js';
import { resolveOnPath } from '../resolve-on-path.js';
import type { RunningProvider } from './provider.js';

/**
 * Writes the job's script and returns its name. `set -e` first, so the first failing command ends
 * it; and standard input at end-of-file, as on a CI runner: under the pty a command that reads its
 * input (`read x`, a prompt) would otherwise wait forever for a keyboard nobody types on.
 */
export function writeJobScript(hostJobDir: string, lines: string[], runArgs: readonly string[] = []): string {
  fs.writeFileSync(path.join(hostJobDir, 'job.sh'), ['set -e', 'exec </dev/null', setRunArgs(runArgs), ...lines, ''].join('\n'), { mode: 0o700 });
  return 'job.sh';
}

/**
 * Makes the run's arguments the shell's positional parameters, which `${{ run.args }}` in a command
 * refers to (`"$@"`): each argument arrives as the word the user typed, and is never run as code.
 */
export function setRunArgs(runArgs: readonly string[]): string {
  return runArgs.length > 0 ? `set -- ${shellJoin(runArgs)}` : 'set --';
}

/**
 * Runs the job's script in bash under a pty on this machine; with `runAs`, as that user, the pty's
 * state kept in `stateDir` (a folder the user cannot write), not in the job's folder.
 */
export function runHostScript(hostJobDir: string, cwd: string, env: Record<string, string>, onData: (d: Buffer) => void, as?: { runAs: RunAs; stateDir: string }): RunningProvider {
  const args = ['--noprofile', '--norc', path.join(hostJobDir, 'job.sh')];
  const proc = spawnPty({ file: 'bash', args, cwd, env, onData, stateDir: as?.stateDir ?? hostJobDir, ...(as ? { runAs: as.runAs } : {}) });
  return {
    exited: proc.exited.then(({ exitCode, signal }) => (signal ? 128 + signal : exitCode)),
    signal: (sig) => proc.signal(sig),
    pause: () => proc.pause(),
    resume: () => proc.resume(),
    pauseIsFree: proc.pauseIsFree,
  };
}

/** The command that runs the job's script in a container: bash when the image has it, else sh. */
export function containerScriptCommand(jobDir: string): string[] {
  const script = shellQuote(`${jobDir}/job.sh`);
  return ['/bin/sh', '-c', `if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc ${script}; else exec sh ${script}; fi`];
}

/** Puts `python` and `python3` for the chosen interpreter first on the job's PATH (on this machine). */
export function pythonOnHostPath(hostJobDir: string, env: Record<string, string>, interpreter: string): void {
  const bin = path.join(hostJobDir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const target = resolveOnPath(interpreter, env.PATH ?? '');
  for (const name of ['python', 'python3']) {
    fs.rmSync(path.join(bin, name), { force: true });
    fs.symlinkSync(target, path.join(bin, name));
  }
  env.PATH = `${bin}:${env.PATH ?? ''}`;
}

/**
 * Shell lines that find the interpreter for a Python version where the job runs (in a container,
 * the image's) and put it first on PATH, or end the job saying it is missing.
 */
export function pythonInShell(jobDir: string, version: string | undefined, where: string): string[] {
  const bin = shellQuote(`${jobDir}/bin`);
  const exe = version ? `python${version}` : 'python3';
  return [
    `__dstack_py=$(command -v ${shellQuote(exe)} || true)`,
    `if [ -z "$__dstack_py" ]; then echo ${shellQuote(`dstack: ${version ? `python ${version}` : 'python3'} is not installed in ${where}`)} >&2; exit 127; fi`,
    `mkdir -p ${bin} && ln -sf "$__dstack_py" ${bin}/python && ln -sf "$__dstack_py" ${bin}/python3`,
    `export PATH=${bin}:"$PATH"`,
  ];
}
