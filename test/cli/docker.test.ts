import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allRuns, cli, FIXTURE_BIN, makeRepo, runNameOf, startCli, tempDir, waitFor } from '../helpers/cli.js';
import { AUTH_REGISTRY, containersWithLabel, docker, IMAGE, PYTHON_IMAGE, REGISTRY, REGISTRY_PASSWORD, REGISTRY_USER } from '../helpers/docker.js';

const dockerWf = (name: string, body: string, image = IMAGE) => `  - name: ${name}\n    provider: docker\n    image: ${image}\n${body}`;


async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('the docker provider', () => {
  it('runs commands in the image with env and working_dir, and saves artifacts and caches through the mount', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf(
        'hello',
        [
          '    working_dir: src',
          '    environment:',
          '      GREETING: hello',
          '    commands:',
          '      - echo "$GREETING from $(pwd) run=$RUN_NAME"',
          '      - cat input.txt',
          '      - cat cache/count 2>/dev/null || echo no-cache',
          '      - mkdir -p output cache && echo "Hello, world!" > output/hello.txt && echo "$RUN_NAME" > cache/count',
          '    artifacts: [output]',
          '    cache: [cache]',
          '',
        ].join('\n'),
      )}${dockerWf('fail', '    commands:\n      - echo before\n      - exit 4\n      - echo after\n')}`,
      'src/input.txt': 'from the repository\n',
    });
    const r = await cli(['run', 'hello'], { cwd, home });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const name = runNameOf(r.stdout);
    expect(r.stdout).toContain(`hello from /dstack/work/src run=${name}`);
    expect(r.stdout).toContain('from the repository');
    expect(r.stdout).toContain('no-cache');
    const out = tempDir();
    await cli(['artifacts', 'download', name, '-o', out], { cwd, home });
    expect(fs.readFileSync(path.join(out, 'src/output/hello.txt'), 'utf8')).toBe('Hello, world!\n');
    // The runner can delete what the container wrote: its job folder is gone.
    expect(fs.readdirSync(path.join(home, 'jobs'))).toEqual([]);

    const again = await cli(['run', 'hello'], { cwd, home });
    expect(again.stdout).toContain(name);

    const failed = await cli(['run', 'fail'], { cwd, home });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('before');
    expect(failed.stdout).not.toContain('after');
    expect((await allRuns(cwd, home))[0]!.jobs[0]).toMatchObject({ status: 'failed', exit_code: 4 });
    expect(containersWithLabel('dstack.job')).toEqual([]);
  });

  it("runs the image's own command when there are no commands, and entrypoint overrides it", async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf('own', '    entrypoint: echo from-entrypoint\n')}`,
    });
    const r = await cli(['run', 'own'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('from-entrypoint');
  });

  it("gives commands to a non-shell entrypoint as they are, a variable's value in them as data", async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf('plain', '    entrypoint: [echo]\n    commands:\n      - "value=' + '${{ x }}"\n')}`,
      '.dstack/variables.yaml': 'variables:\n  plain:\n    x: default\n',
    });
    const r = await cli(['run', 'plain', '--x', '$(id) `id`'], { cwd, home });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // echo got the line as it is: no `set -e` before it, the value put in as text, nothing run.
    expect(r.stdout).toContain('value=$(id) `id`');
    expect(r.stdout).not.toContain('set -e');
    expect(r.stdout).not.toContain('uid=');
  });

  it('pulls a missing image from the registry with progress, and says why a pull fails', async () => {
    const home = tempDir();
    const image = `${REGISTRY}/busybox:1`;
    // The private registry serves the same layers: without both gone, there is nothing to download.
    for (const name of [image, `${AUTH_REGISTRY}/busybox:1`]) {
      try {
        docker('rmi', name);
      } catch {
        // not there: fine
      }
    }
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf('pulled', '    commands: [echo pulled-ok]\n', image)}${dockerWf('missing', '    commands: [true]\n', `${REGISTRY}/no-such-image:1`)}`,
    });
    const r = await cli(['run', 'pulled'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Pulling ${image}`);
    expect(r.stdout).toMatch(/\[#{20}\] 100% [\d.]+\/[\d.]+ MB/);
    expect(r.stdout).toContain(`Pulled ${image}`);
    expect(r.stdout).toContain('pulled-ok');

    const unreachable = makeRepo({ '.dstack/workflows.yaml': `workflows:\n${dockerWf('far', '    commands: [true]\n', '127.0.0.1:1/busybox:1')}` });
    const far = await cli(['run', 'far'], { cwd: unreachable, home });
    expect(far.code).toBe(1);
    expect(far.stdout).toContain("cannot pull image '127.0.0.1:1/busybox:1': the registry cannot be reached (no network?)");

    const m = await cli(['run', 'missing'], { cwd, home });
    expect(m.code).toBe(1);
    expect(m.stdout).toContain(`cannot pull image '${REGISTRY}/no-such-image:1': the image was not found`);
    expect((await allRuns(cwd, home))[0]!.jobs[0]!.reason).toMatch(/^cannot pull image .* the image was not found/);
  });

  it('logs in to a private registry with registry_auth from a secret, and says when it refuses', async () => {
    const home = tempDir();
    const image = `${AUTH_REGISTRY}/busybox:1`;
    try {
      docker('rmi', image);
    } catch {
      // not there: fine
    }
    const auth = (password: string) => `    registry_auth:\n      username: ${REGISTRY_USER}\n      password: ${password}\n    commands: [echo authed-ok]\n`;
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf('private', auth('${{ secrets.REGISTRY_PASSWORD }}'), image)}${dockerWf('wrong', auth('not-the-password'), image)}`,
    });
    const refused = await cli(['run', 'wrong'], { cwd, home });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(`cannot pull image '${image}': the registry refused access (unauthorized)`);

    const missing = await cli(['run', 'private'], { cwd, home });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/unknown secret 'REGISTRY_PASSWORD' in workflow 'private'; add it with 'dstack secrets add REGISTRY_PASSWORD'/);

    await cli(['secrets', 'add', 'REGISTRY_PASSWORD'], { cwd, home, input: `${REGISTRY_PASSWORD}\n` });
    const ok = await cli(['run', 'private'], { cwd, home });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('authed-ok');
  });

  it('applies memory and CPU limits, visible inside the container', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf(
        'limits',
        [
          '    commands:',
          '      - cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
          '      - cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us',
          '      - df -m /dev/shm | tail -1',
          '    resources:',
          '      cpu: 0.5',
          '      memory: 64MB',
          '      shm_size: 32MB',
          '',
        ].join('\n'),
      )}`,
    });
    const r = await cli(['run', 'limits'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(String(64 * 1048576));
    expect(r.stdout).toMatch(/^(50000( 100000)?)\r?$/m);
    expect(r.stdout).toMatch(/shm +32 /);
  });

  it('publishes ports on the host loopback and prints their URLs', async () => {
    const home = tempDir();
    const port = await freePort();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf('serve', `    ports: [${port}]\n    commands:\n      - echo served-by-the-job > index.html\n      - httpd -f -p ${port} -h .\n`)}`,
    });
    const child = startCli(['run', 'serve'], { cwd, home, env: { DSTACK_STOP_GRACE_SECONDS: '2' } });
    await waitFor(() => child.output().stdout.includes(`serve: port ${port} is open at http://127.0.0.1:${port}`), 30_000, 'the port URL');
    const body = await (await fetch(`http://127.0.0.1:${port}/index.html`)).text();
    expect(body).toBe('served-by-the-job\n');
    child.kill('SIGINT');
    expect((await child.exited).code).toBe(1);
    expect(containersWithLabel('dstack.job')).toEqual([]);
  });

  it('stops a container job with dstack stop (SIGTERM, as docker stop), saves its artifacts and removes the container', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf(
        'long',
        [
          '    commands:',
          '      - mkdir -p out',
          "      - trap 'echo stopped > out/state; exit 143' TERM",
          '      - echo ready',
          '      - while true; do sleep 0.1; done',
          '    artifacts: [out]',
          '',
        ].join('\n'),
      )}`,
    });
    const name = runNameOf((await cli(['run', 'long', '-d'], { cwd, home })).stdout);
    await waitFor(async () => (await cli(['logs', name], { cwd, home })).stdout.includes('ready'), 30_000, 'the container to start');
    expect(containersWithLabel('dstack.job')).toHaveLength(1);
    const stop = await cli(['stop', name], { cwd, home });
    expect(stop.stdout).toBe(`Stopping ${name}…\n${name}: stopped\n`);
    const list = JSON.parse((await cli(['artifacts', 'list', name, '--json'], { cwd, home })).stdout);
    expect(list).toEqual([{ workflow: 'long', path: 'out', files: 1, bytes: 'stopped\n'.length }]);
    expect(containersWithLabel('dstack.job')).toEqual([]);
  });

  it('removes the container a killed dstack left behind', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': `workflows:\n${dockerWf('long', '    commands:\n      - echo ready\n      - sleep 600\n')}` });
    const child = startCli(['run', 'long'], { cwd, home });
    await waitFor(() => child.output().stdout.includes('ready'), 30_000, 'the container to start');
    child.kill('SIGKILL');
    await child.exited;
    expect(containersWithLabel('dstack.job')).toHaveLength(1);
    const [run] = await allRuns(cwd, home);
    expect(run!.status).toBe('aborted');
    expect(containersWithLabel('dstack.job')).toEqual([]);
  });

  it('says clearly when a GPU job meets an engine without the NVIDIA runtime', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': `workflows:\n${dockerWf('gpu', '    commands: [true]\n    resources:\n      gpu: 1\n')}` });
    const r = await cli(['run', 'gpu'], { cwd, home, env: { PATH: `${FIXTURE_BIN}:${process.env.PATH}`, FAKE_GPUS: 'NVIDIA A100-SXM4-80GB:81920' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/this Docker engine cannot give GPUs to containers \(.*\); install the NVIDIA Container Toolkit/);
  });

  it('says clearly when there is no engine, for docker jobs only', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n${dockerWf('d', '    commands: [true]\n')}  - name: b\n    provider: bash\n    commands: [echo bash-ok]\n`,
    });
    const env = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    const d = await cli(['run', 'd'], { cwd, home, env });
    expect(d.code).toBe(1);
    expect(d.stderr).toBe(
      'dstack: error: cannot reach a Docker engine at unix:///nonexistent/docker.sock (ENOENT); start Docker, or set DOCKER_HOST to where it listens\n',
    );
    const b = await cli(['run', 'b'], { cwd, home, env });
    expect(b.code).toBe(0);
    expect(b.stdout).toContain('bash-ok');
  });
});

describe('docker isolation', () => {
  it('passes run.args as the words typed to jobs in containers, with sh as the shell', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': [
        'workflows:',
        '  - name: boxed',
        '    provider: bash',
        '    commands:',
        '      - echo "A=[${{ run.args }}]"',
        '      - printf "<%s>" ${{ run.args }}; echo',
        dockerWf('image', '    commands:\n      - printf "[%s]" ${{ run.args }}; echo\n'),
      ].join('\n'),
    });
    const args = ['--', 'x$(echo INJ)y', 'a b', '*'];
    const boxed = await cli(['run', 'boxed', '--isolation', 'docker', '--image', IMAGE, ...args], { cwd, home });
    expect(boxed.stdout).toContain('A=[x$(echo INJ)y a b *]');
    expect(boxed.stdout).toContain('<x$(echo INJ)y><a b><*>');
    const image = await cli(['run', 'image', ...args], { cwd, home });
    expect(image.stdout).toContain('[x$(echo INJ)y][a b][*]');
  });

  it('runs bash jobs in a container with --isolation docker, and keeps the setting with dstack config', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': 'workflows:\n  - name: where\n    provider: bash\n    commands:\n      - test "$(pwd)" = /dstack/work && echo in-a-container || echo on-the-host\n      - echo "home=$HOME"\n      - mkdir -p out && echo made > out/f\n    artifacts: [out]\n',
    });
    const host = await cli(['run', 'where'], { cwd, home });
    expect(host.stdout).toContain('on-the-host');
    const boxed = await cli(['run', 'where', '--isolation', 'docker', '--image', IMAGE], { cwd, home });
    expect(boxed.code).toBe(0);
    expect(boxed.stdout).toContain('in-a-container');
    expect(boxed.stdout).toContain('home=/dstack/home');
    const list = JSON.parse((await cli(['artifacts', 'list', runNameOf(boxed.stdout), '--json'], { cwd, home })).stdout);
    expect(list).toEqual([{ workflow: 'where', path: 'out', files: 1, bytes: 5 }]);

    const config = await cli(['config', '--isolation', 'docker', '--image', IMAGE], { cwd, home });
    expect(config.stdout).toBe(`isolation: docker\nimage: ${IMAGE}\n`);
    const kept = await cli(['run', 'where'], { cwd, home });
    expect(kept.stdout).toContain('in-a-container');
    const bad = await cli(['config', '--isolation', 'vm'], { cwd, home });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("dstack: error: unknown isolation 'vm'; use one of: host, docker\n");
  });

  it('runs python jobs in the image with the same semantics: version, script arguments, a virtualenv for requirements', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': [
        'workflows:',
        '  - name: py',
        '    provider: python',
        '    python: 3.11',
        '    requirements: []',
        '    script: main.py --name "big world" ${{ run.args }}',
        '    environment:',
        '      GREETING: hello',
        '    artifacts: [out]',
        '  - name: shell',
        '    provider: bash',
        '    python: 3.11',
        '    commands:',
        '      - python --version',
        '  - name: old',
        '    provider: python',
        '    python: 2.7',
        '    script: main.py',
        '',
      ].join('\n'),
      'main.py': 'import os, sys\nprint(os.environ["GREETING"], sys.argv[1:], sys.prefix, os.getcwd())\nos.makedirs("out", exist_ok=True)\nopen("out/result.txt", "w").write("ok")\n',
    });
    const opts = ['--isolation', 'docker', '--image', PYTHON_IMAGE];
    const r = await cli(['run', 'py', ...opts, '--x', '1'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("hello ['--name', 'big world', '--x', '1'] /dstack/venv /dstack/work");
    expect(JSON.parse((await cli(['artifacts', 'list', runNameOf(r.stdout), '--json'], { cwd, home })).stdout)).toEqual([
      { workflow: 'py', path: 'out', files: 1, bytes: 2 },
    ]);
    const shell = await cli(['run', 'shell', ...opts], { cwd, home });
    expect(shell.stdout).toContain('Python 3.11');
    const old = await cli(['run', 'old', ...opts], { cwd, home });
    expect(old.code).toBe(1);
    expect(old.stdout).toContain('dstack: python 2.7 is not installed in the image');
  });
});
