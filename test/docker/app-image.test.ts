import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir, waitFor } from '../helpers/cli.js';

// The tag names the recipe: change it when nodeBase() changes, as an engine keeps images between runs.
const BASE = 'dstack-test/node:20-2';
const IMAGE = 'dstack-test/app:latest';

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).trim();

/**
 * A Node.js 20 base image made here, as the registry's node image cannot be pulled: busybox for a
 * shell, this machine's node and npm, and the libraries they and the native addons link.
 */
function nodeBase(): void {
  if (spawnSync('docker', ['image', 'inspect', BASE], { stdio: 'ignore' }).status === 0) return;
  const root = tempDir('dstack-node-root-');
  for (const dir of ['bin', 'usr/bin', 'usr/lib', 'tmp', 'etc', 'root']) fs.mkdirSync(path.join(root, dir), { recursive: true });
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const applet of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', applet));
  }
  // npm's `#!/usr/bin/env node`.
  fs.symlinkSync('../../bin/busybox', path.join(root, 'usr/bin/env'));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  const node = fs.realpathSync(process.execPath);
  fs.copyFileSync(node, path.join(root, 'usr/bin/node'));
  fs.chmodSync(path.join(root, 'usr/bin/node'), 0o755);
  const npm = path.resolve(path.dirname(fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())), '..');
  execFileSync('cp', ['-a', npm, path.join(root, 'usr/lib/npm')]);
  fs.symlinkSync('../lib/npm/bin/npm-cli.js', path.join(root, 'usr/bin/npm'));
  const addons = execFileSync('find', [path.join(ROOT, 'node_modules'), '-name', '*.node', '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const libs = new Set<string>();
  for (const file of [node, ...addons]) {
    for (const line of spawnSync('ldd', [file], { encoding: 'utf8' }).stdout.split('\n')) {
      const m = /=> (\/\S+)|^\s*(\/\S+)/.exec(line);
      if (m) libs.add(m[1] ?? m[2]!);
    }
  }
  for (const lib of libs) {
    fs.mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(lib, path.join(root, lib));
  }
  if (!fs.existsSync(path.join(root, 'lib64'))) fs.symlinkSync('lib', path.join(root, 'lib64'));
  execFileSync('sh', ['-c', `tar -C '${root}' -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - ${BASE}`], { stdio: 'ignore' });
}

/**
 * The build context `docker build .` gets from a clone, plus this checkout's node_modules (hard
 * links), since the build cannot reach the npm registry either: the repository's .dockerignore
 * with only its node_modules line taken out.
 */
function context(): string {
  const dir = tempDir('dstack-image-context-');
  // The files git has (and those it would add), as a clone has them; ones deleted meanwhile are not.
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\0')
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)));
  execFileSync('sh', ['-c', `tar --null -T - -c | tar -x -C '${dir}'`], { cwd: ROOT, input: files.join('\0') });
  execFileSync('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules')]);
  const ignore = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
  expect(ignore.split('\n')).toContain('node_modules');
  fs.writeFileSync(path.join(dir, '.dockerignore'), ignore.split('\n').filter((l) => l !== 'node_modules').join('\n'));
  return dir;
}

describe('the dstack-app image', () => {
  it('builds from the Dockerfile on a local base and serves, not as root, with its data in /data', { timeout: 600_000 }, async () => {
    nodeBase();
    execFileSync('docker', ['build', '-q', '--build-arg', `BASE=${BASE}`, '-t', IMAGE, context()], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 540_000 });
    const config = JSON.parse(docker('image', 'inspect', IMAGE, '--format', '{{json .Config}}')) as { User: string; ExposedPorts: Record<string, unknown>; Volumes: Record<string, unknown> };
    expect(config.User).toBe('1000:1000');
    expect(Object.keys(config.ExposedPorts)).toEqual(['3000/tcp']);
    expect(Object.keys(config.Volumes)).toEqual(['/data']);
    // Only what runs: no sources, no tests, no dev dependencies.
    const listing = docker('run', '--rm', '--entrypoint', 'sh', IMAGE, '-c', 'ls /app; ls /app/node_modules; id -u');
    expect(listing).toContain('dist');
    expect(listing).not.toMatch(/^(test|shared|vitest|typescript)$/m);
    expect(listing.split('\n').at(-1)).toBe('1000');
    const container = docker('run', '-d', '--rm', '-p', '127.0.0.1::3000', IMAGE);
    try {
      const port = docker('port', container, '3000/tcp').split('\n')[0]!.split(':').at(-1);
      const health = await waitFor(async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
          return res.ok && ((await res.json()) as { ok: boolean });
        } catch {
          return false;
        }
      }, 30_000, 'the server in the container');
      expect(health).toEqual({ ok: true });
      expect(docker('logs', container)).toContain('(data in /data)');
      // No GitHub variables: CLI only, and the webhook path is not served.
      expect((await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, { method: 'POST', signal: AbortSignal.timeout(5000) })).status).toBe(404);
    } finally {
      spawnSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
    }
  });
});
