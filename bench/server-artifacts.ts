/**
 * A large artifact from a runner agent to the server. Prints JSON: a job whose artifact is a
 * folder of `--megabytes` MB (a few hundred files of random data, 0.1–8 MB each, in nested
 * folders: checkpoints and shards; made once, hard-linked into the job's folder so making it costs
 * the job nothing), uploaded to the server, against `tar -c` of the same folder into a file,
 * paired and interleaved (target ratio under 1.5). The upload's time is the job's `uploading` →
 * `done` from its status events; the whole `dstack run` as typed is printed too (over the HTTP API
 * where remote mode is not built: `via: "api"`). Memory: VmRSS of the server and of the agent
 * sampled every 50 ms throughout, the largest of each, and VmHWM (flat: far below the artifact).
 * The stored artifact's size must be the folder's. Everything is removed after.
 * Usage: npm run bench:artifacts [-- --megabytes 1000 --repeat 3 --files 500]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { arg, between, machine, median, round, runAsTyped, serverWithAgent, tempDir, timed, watchedPairs } from './server-harness.js';

const megabytes = arg('megabytes', 1000);
const repeat = arg('repeat', 3);
const files = arg('files', 500);

/** The artifact, once: files of random data (incompressible) until `megabytes` MB. */
function makeData(dir: string): { files: number; bytes: number } {
  let seed = 5;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const buffer = Buffer.alloc(8_000_000);
  let bytes = 0;
  let count = 0;
  while (bytes < megabytes * 1_000_000) {
    const size = Math.min(megabytes * 1_000_000 - bytes, Math.round(100_000 + random() * 7_900_000));
    const folder = path.join(dir, `shard-${count % 12}`, `epoch-${count % 5}`);
    fs.mkdirSync(folder, { recursive: true });
    crypto.randomFillSync(buffer, 0, size);
    fs.writeFileSync(path.join(folder, `part-${count}.bin`), buffer.subarray(0, size));
    bytes += size;
    count++;
  }
  return { files: count, bytes };
}

// Made in a temporary folder of its own (removed at exit), on the same file system as the agent's.
const dataRoot = tempDir('dstack-bench-artifact-data-');
const data = path.join(dataRoot, 'model');
const made = makeData(data);
const s = await serverWithAgent('dstack-bench-artifacts-', files, `workflows:\n  - name: save\n    provider: bash\n    commands:\n      - cp -al ${data} model\n    artifacts:\n      - model\n`);

/** One run of `save`: the whole run's seconds, the upload's, and the artifact as stored. */
async function dstackRun() {
  const r = await runAsTyped(s, 'save', path.join(s.work, 'run.txt'));
  const artifact = (await s.api.json<{ artifacts: { files: number; bytes: number }[] }>('GET', `/api/runs/${r.name}/artifacts`)).artifacts[0];
  return { seconds: r.seconds, uploadSeconds: between(r.view, 'uploading', 'done'), storedBytes: artifact?.bytes ?? 0, storedFiles: artifact?.files ?? 0 };
}

const tarFile = path.join(s.work, 'floor.tar');
async function floorRun(): Promise<number> {
  const t = await timed('tar', ['-cf', tarFile, '-C', dataRoot, 'model']);
  fs.rmSync(tarFile, { force: true });
  return t.seconds;
}

const { a: runs, b: floors, cpu, memory } = await watchedPairs(s, repeat, dstackRun, floorRun, 200);

const floor = median(floors);
const upload = median(runs.map((r) => r.uploadSeconds));
const ratio = upload / floor;
process.stdout.write(
  JSON.stringify(
    {
      machine: machine(),
      artifact: { files: made.files, megabytes: round(made.bytes / 1e6, 1) },
      repeat: runs.length,
      via: s.remote.ok ? 'cli' : 'api',
      ...(s.remote.ok ? {} : { why: s.remote.why }),
      tar_floor_s: round(floor),
      upload_s: round(upload),
      ratio: round(ratio),
      target_ratio: 1.5,
      ratio_met: ratio < 1.5,
      upload_mb_per_s: round(made.bytes / 1e6 / upload, 1),
      dstack_run_s: round(median(runs.map((r) => r.seconds))),
      raw: { tar_s: floors.map((x) => round(x)), upload_s: runs.map((r) => round(r.uploadSeconds)), dstack_run_s: runs.map((r) => round(r.seconds)) },
      cpu_of_all_runs: cpu,
      // Flat: a few tens of MB whatever the artifact's size (the target: far below it).
      memory,
      stored: { bytes: runs.map((r) => r.storedBytes), files: runs.map((r) => r.storedFiles), met: runs.every((r) => r.storedBytes === made.bytes && r.storedFiles === made.files) },
    },
    null,
    2,
  ) + '\n',
);
