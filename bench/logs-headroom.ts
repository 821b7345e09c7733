/**
 * How much room this machine leaves for the logs target (bench/server-logs.ts: `dstack run` of a
 * job printing 200 MB under 1.3× the same command under `script -qfec CMD /dev/null` into a file).
 * Prints JSON: the floor alone, paired and interleaved with two things beside it:
 *  - `bare_path`: the skeleton of the path a log takes, with nothing of dstack's protocol, in
 *    three Node processes as in a real run: a follower of the file that `script` writes (the
 *    agent's own FileTail), sending raw bytes over TCP to a relay that appends them to a file and
 *    passes them on (the server), to a client that writes them to its stdout file (the CLI).
 *    Timed from the command's start to the client's last byte, as `dstack run` is.
 *  - `idle_loop`: a busy loop at the lowest CPU priority there is (SCHED_IDLE, else nice 19),
 *    which takes no CPU time the command wants.
 * Where `bare_path` is already past 1.3, the target is past what even a job → agent → server →
 * CLI path with no protocol at all reaches on this machine (`minor_faults` and CPU per process
 * say what that skeleton spends, to set beside `cpu_of_all_runs` of bench:logs); where
 * `idle_loop` is past 1, work on the other CPUs slows the command whatever its priority (CPUs
 * that share a core, or a hypervisor's).
 * Usage: npm run bench:logs-headroom [-- --megabytes 200 --repeat 5]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileTail } from '../agent/pty/file-tail.js';
import { arg, machine, median, round, tempDir, timed } from './server-harness.js';

const HERE = fileURLToPath(import.meta.url);

/** The follower: reads `file` as it grows and sends it to the relay; ends on SIGUSR2 (the writer ended), once read to the end. */
function tailRole(file: string, port: number): void {
  const socket = net.connect(port, '127.0.0.1', ready);
  const tail = new FileTail(file, (data) => {
    if (!socket.write(data)) {
      tail.pause();
      socket.once('drain', () => tail.resume());
    }
  });
  process.on('SIGUSR2', () => {
    tail.writerEnded();
    void tail.done.then(() => socket.end(() => report()));
  });
}

/** The relay: the first connection is the client, the second the follower; appends to `file` and passes on, as a server stores and forwards. */
function relayRole(file: string): void {
  const out = fs.openSync(file, 'w');
  let client: net.Socket | undefined;
  const server = net.createServer((socket) => {
    if (!client) {
      client = socket;
      return;
    }
    socket.on('data', (data: Buffer) => {
      fs.writeSync(out, data);
      if (!client!.write(data)) {
        socket.pause();
        client!.once('drain', () => socket.resume());
      }
    });
    socket.on('end', () => client!.end(() => report(() => server.close())));
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
}

/** The client: writes what the relay sends to its stdout, a file, as the CLI does. */
function clientRole(port: number): void {
  const socket = net.connect(port, '127.0.0.1', ready);
  socket.on('data', (data: Buffer) => fs.writeSync(1, data));
  socket.on('end', () => report());
}

/** Says on stderr that this process is connected (and its signal handler in place). */
function ready(): void {
  process.stderr.write('ready\n');
}

/** Says this process's CPU time and minor page faults on stderr, then exits. */
function report(then?: () => void): void {
  then?.();
  const u = process.resourceUsage();
  process.stderr.write(`${JSON.stringify({ cpu_s: round((u.userCPUTime + u.systemCPUTime) / 1e6, 2), faults: u.minorPageFault })}\n`);
  process.exit(0);
}

const role = process.argv[2];
if (role === 'tail') tailRole(process.argv[3]!, Number(process.argv[4]));
else if (role === 'relay') relayRole(process.argv[3]!);
else if (role === 'client') clientRole(Number(process.argv[3]));
else await main();

/** What a role says when it ends: its CPU seconds and its minor page faults. */
interface RoleUse {
  cpu_s: number;
  faults: number;
}

function startRole(args: string[], stdout: 'pipe' | number = 'pipe'): { child: ChildProcess; ready: Promise<void>; cpu: Promise<RoleUse> } {
  const child = spawn(process.execPath, [HERE, ...args], { stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  let connected: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.startsWith('ready\n')) connected();
  });
  const cpu = new Promise<RoleUse>((resolve, reject) =>
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${args[0]} exited ${code}: ${err.slice(-2000)}`));
      resolve(JSON.parse(err.trim().split('\n').pop()!) as RoleUse);
    }),
  );
  return { child, ready, cpu };
}

async function main(): Promise<void> {
  const megabytes = arg('megabytes', 200);
  const repeat = arg('repeat', 5);
  const bytes = megabytes * 1_000_000;
  // The command of bench/server-logs.ts: numbered lines of ~100 bytes, cut at exactly the size asked.
  const command = `seq -f 'step %09.0f loss 0.123456 acc 0.987654 lr 0.000300 the quick brown fox jumps over the lazy dog' 1 ${Math.ceil(bytes / 90)} | head -c ${bytes}`;
  const work = tempDir('dstack-bench-headroom-');
  const scriptOut = path.join(work, 'script.out');

  /** `script -qfec CMD /dev/null` into a file, as bench:logs times it: seconds, and CPU stolen meanwhile. */
  const script = () => timed('script', ['-qfec', command, '/dev/null'], { cwd: work, stdoutFile: scriptOut });

  const floor = async () => {
    const t = await script();
    return { seconds: t.seconds, stolen: t.stolenSeconds };
  };

  const barePath = async () => {
    const relay = startRole(['relay', path.join(work, 'stored.log')]);
    const port = await new Promise<number>((resolve) => relay.child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const clientOut = fs.openSync(path.join(work, 'shown.txt'), 'w');
    const client = startRole(['client', String(port)], clientOut);
    fs.closeSync(clientOut);
    // The client connects first (the relay takes its first connection for the client).
    await Promise.race([client.ready, client.cpu]);
    fs.writeFileSync(scriptOut, '');
    const follower = startRole(['tail', scriptOut, String(port)]);
    await Promise.race([follower.ready, follower.cpu]);
    const started = process.hrtime.bigint();
    const t = await script();
    follower.child.kill('SIGUSR2');
    const [tail, relayed, shownBy] = await Promise.all([follower.cpu, relay.cpu, client.cpu]);
    // To the client's last byte, as `dstack run` is timed to its end.
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    const shown = fs.statSync(path.join(work, 'shown.txt')).size;
    if (shown !== fs.statSync(scriptOut).size) throw new Error(`the bare path passed on ${shown} of ${fs.statSync(scriptOut).size} bytes`);
    return { seconds: secs, stolen: t.stolenSeconds, use: { follower: tail, relay: relayed, client: shownBy } };
  };

  const idlePolicy = spawnSync('chrt', ['-i', '0', 'true']).status === 0 ? ['chrt', '-i', '0'] : ['nice', '-n', '19'];
  const idleLoop = async () => {
    const loop = spawn(idlePolicy[0]!, [...idlePolicy.slice(1), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    const t = await script();
    loop.kill('SIGKILL');
    await new Promise((resolve) => loop.once('close', resolve));
    return { seconds: t.seconds, stolen: t.stolenSeconds };
  };

  const floors: { seconds: number; stolen: number }[] = [];
  const bare: Awaited<ReturnType<typeof barePath>>[] = [];
  const idle: { seconds: number; stolen: number }[] = [];
  // Interleaved, the order turned each round, so that drift hits all three alike.
  const kinds = [async () => floors.push(await floor()), async () => bare.push(await barePath()), async () => idle.push(await idleLoop())];
  for (let i = 0; i < repeat; i++) for (let k = 0; k < kinds.length; k++) await kinds[(k + i) % kinds.length]!();

  const f = median(floors.map((x) => x.seconds));
  const b = median(bare.map((x) => x.seconds));
  const l = median(idle.map((x) => x.seconds));
  const use = (key: 'follower' | 'relay' | 'client') => ({ cpu_s: round(median(bare.map((x) => x.use[key].cpu_s)), 2), minor_faults: median(bare.map((x) => x.use[key].faults)) });
  process.stdout.write(
    JSON.stringify(
      {
        machine: machine(),
        megabytes,
        repeat,
        script_floor_s: round(f),
        bare_path_s: round(b),
        bare_path_ratio: round(b / f),
        bare_path_per_run: { follower: use('follower'), relay: use('relay'), client: use('client') },
        idle_loop_policy: idlePolicy.join(' '),
        idle_loop_s: round(l),
        idle_loop_ratio: round(l / f),
        target_ratio: 1.3,
        room_for_target: b / f < 1.3,
        raw: {
          script_s: floors.map((x) => round(x.seconds)),
          bare_path_s: bare.map((x) => round(x.seconds)),
          idle_loop_s: idle.map((x) => round(x.seconds)),
          stolen_s: { script: floors.map((x) => x.stolen), bare_path: bare.map((x) => x.stolen), idle_loop: idle.map((x) => x.stolen) },
        },
      },
      null,
      2,
    ) + '\n',
  );
}
