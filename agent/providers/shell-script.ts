import fs from 'node:fs';
import path from 'node:path';
import { PtyProcess } from '../pty-process.js';
import type { ProviderContext, RunningProvider } from './provider.js';

/**
 * Runs lines of shell in one bash under a pty, stopping at the first failing command. The bash,
 * python and (later) docker-isolated providers all end here.
 */
export function runShellScript(ctx: ProviderContext, lines: string[]): RunningProvider {
  const script = path.join(ctx.jobDir, 'job.sh');
  fs.writeFileSync(script, ['set -e', ...lines, ''].join('\n'), { mode: 0o700 });
  const proc = new PtyProcess({
    file: 'bash',
    args: ['--noprofile', '--norc', script],
    cwd: ctx.cwd,
    env: ctx.env,
    onData: ctx.output,
  });
  return {
    exited: proc.exited.then(({ exitCode, signal }) => (signal ? 128 + signal : exitCode)),
    signal: (sig) => proc.signal(sig),
    pause: () => proc.pause(),
    resume: () => proc.resume(),
  };
}

/** Puts `python` and `python3` for the chosen interpreter first on the job's PATH. */
export function pythonOnPath(ctx: ProviderContext, interpreter: string): void {
  const bin = path.join(ctx.jobDir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const target = resolveOnPath(interpreter, ctx.env.PATH ?? '');
  for (const name of ['python', 'python3']) {
    fs.rmSync(path.join(bin, name), { force: true });
    fs.symlinkSync(target, path.join(bin, name));
  }
  ctx.env.PATH = `${bin}:${ctx.env.PATH ?? ''}`;
}

function resolveOnPath(exe: string, PATH: string): string {
  if (exe.includes('/')) return exe;
  for (const dir of PATH.split(':')) {
    const candidate = path.join(dir || '.', exe);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return exe;
}
