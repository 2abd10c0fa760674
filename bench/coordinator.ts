/**
 * `npm run bench:coordinator`: one real coordinator under the result rate of
 * 16 GPU workers (30 TFLOP/s each) on ResNet-152 vs ResNet-152 block outputs
 * (`neurocorr synth --arch resnet152`: 13,951,976 neurons per model) at
 * M = 10, 100 and 1000, for a bounded window each. Real nats-server (its
 * max_payload raised to 8 MB) and redis-server; the coordinator is the
 * product's ClusterCoordinator in its own process, given the job as the
 * models' layouts alone (layout-only model plans: no activation files, no
 * values; its spec names an empty folder, which no simulated worker opens).
 * Simulated workers (another process, benchmark code only) pull the real
 * tile messages, skip the arithmetic, hold each super-tile for the time a
 * 30 TFLOP/s GPU would take on it, and publish a correctly shaped result.
 * Measures merges/s, the coordinator's CPU and RSS, checkpoints (count,
 * time, bytes into Redis), NATS messages/s, and extrapolates the job time.
 * Writes the "Cluster" subsection "Simulated: ..." of bench/RESULTS.md
 * (`--quick`: short windows, writes nothing; `--seconds N`: the window;
 * `--m 100`: those M only; `--max-payload BYTES`: nats-server's, 8 MiB by default).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { architectureLayers } from '#dist/coordinator/synth/architectures.js';
import { ClusterCoordinator } from '#dist/coordinator/cluster/coordinator.js';
import { JobStore } from '#dist/coordinator/cluster/job-store.js';
import type { ClusterSettings } from '#dist/coordinator/options.js';
import { coordinatorConsumer, decodeTile, encodeResult, RESULT_STREAM, resultSubject, TILE_STREAM, WORKER_CONSUMER } from '#dist/shared/cluster/index.js';
import type { LayerInfo, Model } from '#dist/shared/core/index.js';
import { modelPlan } from '#dist/shared/formats/index.js';
import { JobProgress, tilePairs, type JobTile } from '#dist/shared/job/index.js';
import { allocTileResult, type TileResult } from '#dist/shared/tiles/index.js';
import { startNats, startRedis, stopAllServers } from '../test/helpers/servers.js';
import { provision } from '../test/setup/tools.js';
import { replaceSubsection, SIMULATED_HEADING } from './results.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SELF = join(ROOT, 'dist-dev', 'bench', 'coordinator.js');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const log = (line: string) => process.stderr.write(`bench:coordinator: ${line}\n`);

const GPUS = 16;
const GPU_FLOPS = 30e12;
const MAX_PAYLOAD = Number(flag('--max-payload') ?? 8 * 1024 * 1024);
const MS = [10, 100, 1000];

/** ResNet-152's block outputs at 224 px, as `neurocorr synth --arch resnet152` writes them: layer sizes only. */
function resnetLayers(): number[] {
  return architectureLayers('resnet152', 224, 1, false).map((l) => l.shape.reduce((a, b) => a * b, 1));
}

/** A model plan that has a layout and no values: the coordinator plans from skeleton() alone. */
function layoutPlan(sizes: readonly number[], m: number, path: string) {
  let start = 0;
  const layers: LayerInfo[] = sizes.map((count, k) => {
    const layer = { name: `block${k}`, depth: k, source: `block${k}.npy`, shape: [count], start, count, total: count, constant: 0 };
    start += count;
    return layer;
  });
  const n = start;
  const model = (z: Float32Array): Model => ({ path, probes: m, m, n, layers, z, constant: new Uint8Array(n), ids: null, fingerprint: null });
  return modelPlan(n, m, (z) => ({ model: model(z), step: () => false }));
}

// ---------------------------------------------------------------- the coordinator's process

interface CoordinatorLine {
  readonly at: number;
  readonly tiles: number;
  readonly entries: number;
  readonly pairs: number;
  readonly saves: number;
  readonly saveMs: number;
  /** The longest the event loop was blocked (ms): encoding a full checkpoint is the longest synchronous step. */
  readonly stall: number;
  readonly plan: { readonly tiles: number; readonly pairs: number; readonly block: number; readonly span: number } | null;
}

async function coordinatorRole(o: { nats: string; redis: string; m: number; job: string; dir: string; checkpoints: Checkpoints }): Promise<void> {
  let tiles = 0;
  let entries = 0;
  let pairs = 0;
  let saves = 0;
  let saveMs = 0;
  let plan: CoordinatorLine['plan'] = null;
  // Counted from the product's own merge and checkpoint (benchmark instrumentation, this process only).
  const merge = JobProgress.prototype.merge;
  JobProgress.prototype.merge = function (this: JobProgress, tile: JobTile, result: TileResult, constant: Uint8Array | null): boolean {
    plan ??= { tiles: this.plan.tiles.length, pairs: this.plan.tiles.reduce((s, t) => s + tilePairs(t), 0), block: this.plan.block, span: this.plan.span };
    const fresh = merge.call(this, tile, result, constant);
    if (fresh) {
      tiles++;
      entries += result.rowBest.length + result.colBest.length;
      pairs += tilePairs(tile);
    }
    return fresh;
  };
  const save = JobStore.prototype.save;
  JobStore.prototype.save = async function (this: JobStore, ...a: Parameters<typeof save>) {
    const t = performance.now();
    try {
      return await save.apply(this, a);
    } finally {
      saves++;
      saveMs += performance.now() - t;
    }
  };
  const stalls = monitorEventLoopDelay({ resolution: 20 });
  stalls.enable();
  setInterval(() => {
    const line: CoordinatorLine = { at: performance.timeOrigin + performance.now(), tiles, entries, pairs, saves, saveMs, stall: stalls.max / 1e6, plan };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }, 1000).unref();
  const sizes = resnetLayers();
  const f = layoutPlan(sizes, o.m, o.dir);
  const g = layoutPlan(sizes, o.m, o.dir);
  const settings: ClusterSettings = {
    nats: o.nats,
    redis: o.redis,
    job: o.job,
    upload: false,
    prefix: 'bench-coordinator',
    queue: { ackWaitMs: 30_000, maxDeliver: 5 },
    checkpointTiles: o.checkpoints.tiles,
    checkpointSeconds: o.checkpoints.seconds,
    ttlSeconds: 3600,
    leaseMs: 15_000,
    metricsPort: null,
    metricsHost: '127.0.0.1',
    logLevel: 'warn',
    natsCredentials: {},
    redisCredentials: {},
    serviceTimeoutMs: 60_000,
    workers: GPUS,
    superTile: undefined,
  };
  const never = (): never => {
    throw new Error('the benchmark stops the job before it finishes');
  };
  await new ClusterCoordinator<null>(
    {
      paths: [o.dir, o.dir],
      labels: ['F', 'G'],
      planned: { models: [f, g], partial: null, spatial: null },
      pairs: [{ f: 0, g: 1 }],
      options: { conv: 'units', layers: null, layersF: null, layersG: null, sample: null, probes: null },
      null: null,
      tile: undefined,
      progress: { enabled: false, intervalMs: 1000 },
      log: (line) => process.stderr.write(`${line}\n`),
      finish: never,
      restore: never,
    },
    settings,
  ).run();
}

// ---------------------------------------------------------------- the simulated workers' process

interface WorkersLine {
  readonly pulled: number;
  readonly published: number;
  readonly bytes: number;
  readonly pairs: number;
}

/** GPUS simulated GPUs, two tiles in flight each (as a worker's --inflight), each tile held for the time the GPU would compute it. */
async function workersRole(o: { nats: string; m: number }): Promise<void> {
  const nc = await connect({ servers: o.nats, maxPingOut: 100 });
  const js = jetstream(nc);
  let consumer = null;
  while (consumer === null) consumer = await js.consumers.get(TILE_STREAM, WORKER_CONSUMER).catch(() => sleep(200).then(() => null));
  const counts: { pulled: number; published: number; bytes: number; pairs: number } = { pulled: 0, published: 0, bytes: 0, pairs: 0 };
  setInterval(() => process.stdout.write(`${JSON.stringify(counts satisfies WorkersLine)}\n`), 1000).unref();
  const shapes = new Map<string, { result: TileResult; constant: Uint8Array }>();
  const shaped = (rows: number, cols: number) => {
    const key = `${rows}x${cols}`;
    let s = shapes.get(key);
    if (s === undefined) {
      const result = allocTileResult(rows, cols);
      result.rowBest.fill(0.5);
      result.colBest.fill(0.25);
      s = { result, constant: new Uint8Array(rows + cols) };
      shapes.set(key, s);
    }
    return s;
  };
  const provenance = { worker: 'simulated-gpu', kernel: 'simulated', deliveries: 1, milliseconds: 0 };
  const gpus = Array.from({ length: GPUS }, () => ({ busy: performance.now() }));
  const lane = async (gpu: { busy: number }): Promise<void> => {
    for (;;) {
      const msg = await consumer.next({ expires: 2000 }).catch(() => null);
      if (msg === null) continue;
      counts.pulled++;
      const { job, tile } = decodeTile(msg.data);
      if (tile.kind !== 'main') {
        msg.term();
        continue;
      }
      const seconds = (2 * o.m * tilePairs(tile)) / GPU_FLOPS;
      gpu.busy = Math.max(gpu.busy, performance.now()) + seconds * 1000;
      const wait = gpu.busy - performance.now();
      if (wait > 0) await sleep(wait);
      const { result, constant } = shaped(tile.f.count, tile.g.count);
      const payload = encodeResult(job, tile.id, result, constant, provenance);
      await js.publish(resultSubject(job), payload);
      msg.ack();
      counts.published++;
      counts.bytes += payload.length;
      counts.pairs += tilePairs(tile);
    }
  };
  await Promise.all(gpus.flatMap((gpu) => [lane(gpu), lane(gpu)]));
}

// ---------------------------------------------------------------- the run

interface Child {
  readonly proc: ChildProcess;
  readonly last: () => string | null;
  readonly err: () => string;
}

function child(role: string, options: object): Child {
  const proc = spawn(process.execPath, ['--max-old-space-size=4096', SELF, '--role', role, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let last: string | null = null;
  let buffer = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    if (lines.length > 0) last = lines[lines.length - 1]!;
  });
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
  return { proc, last: () => last, err: () => err };
}

async function stop(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const closed = new Promise((resolve) => c.proc.once('close', resolve));
  c.proc.kill('SIGKILL');
  await closed;
}

interface Checkpoints {
  readonly label: string;
  readonly tiles: number;
  readonly seconds: number;
}

interface Row {
  readonly m: number;
  readonly checkpoints: string;
  readonly block: number;
  readonly span: number;
  readonly tiles: number;
  readonly planPairs: number;
  readonly window: number;
  readonly target: number;
  readonly offered: number;
  readonly merged: { readonly tiles: number; readonly entries: number; readonly pairs: number };
  readonly cpu: number;
  readonly rss: number;
  readonly saves: number;
  readonly saveMs: number;
  readonly stall: number;
  readonly redisBytes: number;
  readonly natsMessages: number;
  readonly resultBytes: number;
  readonly backlog: number;
}

async function redisInput(redis: Redis): Promise<number> {
  return Number(/total_net_input_bytes:(\d+)/.exec(await redis.info('stats'))?.[1] ?? 0);
}

/** CPU seconds (user + system) and resident bytes of a process, from /proc: read from outside, so a busy event loop does not delay it. */
function usage(pid: number): { cpu: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  // USER_HZ is 100 on Linux.
  return { cpu: ticks / 100, rss };
}

/** The child's next report stamped at or after `t` (its event loop may be busy for seconds, e.g. encoding a checkpoint). */
async function lineAfter<T extends { at: number }>(c: Child, t: number, parse: (c: Child) => T | null): Promise<T> {
  for (let waited = 0; waited < 120_000; waited += 100) {
    const line = parse(c);
    if (line !== null && line.at >= t) return line;
    await sleep(100);
  }
  throw new Error(`no report from the ${c.proc.spawnargs.includes('coordinator') ? 'coordinator' : 'workers'} for 120 s: ${c.err()}`);
}

async function measure(m: number, nats: string, redisUrl: string, redis: Redis, warmup: number, window: number, checkpoints: Checkpoints): Promise<Row> {
  const job = `bench-m${m}-${checkpoints.label}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'nc-bench-layout-'));
  const workers = child('workers', { nats, m });
  const coordinator = child('coordinator', { nats, redis: redisUrl, m, job, dir, checkpoints });
  const parse = <T>(c: Child): T | null => (c.last() === null ? null : (JSON.parse(c.last()!) as T));
  try {
    const started = Date.now();
    while ((parse<CoordinatorLine>(coordinator)?.tiles ?? 0) === 0) {
      if (coordinator.proc.exitCode !== null) throw new Error(`the coordinator exited: ${coordinator.err()}`);
      if (Date.now() - started > 180_000) throw new Error(`no result merged after 180 s: ${coordinator.err()}`);
      await sleep(200);
    }
    log(`M = ${m}: first merge after ${((Date.now() - started) / 1000).toFixed(1)} s; warming up ${warmup} s`);
    await sleep(warmup * 1000);
    const pid = coordinator.proc.pid!;
    const t0 = Date.now();
    const [u0, w0, r0] = [usage(pid), parse<WorkersLine>(workers)!, await redisInput(redis)];
    let rss = u0.rss;
    const c0 = await lineAfter(coordinator, t0, parse<CoordinatorLine>);
    const until = c0.at + window * 1000;
    while (Date.now() < until) {
      await sleep(500);
      rss = Math.max(rss, usage(pid).rss);
    }
    const c1 = await lineAfter(coordinator, until, parse<CoordinatorLine>);
    const t1 = Date.now();
    const [u1, w1, r1] = [usage(pid), parse<WorkersLine>(workers)!, await redisInput(redis)];
    const seconds = (c1.at - c0.at) / 1000;
    const wall = (t1 - t0) / 1000;
    const plan = c1.plan!;
    const row: Row = {
      m,
      checkpoints: checkpoints.label,
      block: plan.block,
      span: plan.span,
      tiles: plan.tiles,
      planPairs: plan.pairs,
      window: seconds,
      target: (GPUS * GPU_FLOPS) / (2 * m),
      offered: (w1.pairs - w0.pairs) / wall,
      merged: { tiles: (c1.tiles - c0.tiles) / seconds, entries: (c1.entries - c0.entries) / seconds, pairs: (c1.pairs - c0.pairs) / seconds },
      cpu: (u1.cpu - u0.cpu) / wall,
      rss,
      saves: c1.saves - c0.saves,
      saveMs: c1.saveMs - c0.saveMs,
      stall: c1.stall,
      redisBytes: (r1 - r0) / wall,
      natsMessages: (w1.pulled - w0.pulled + (w1.published - w0.published)) / wall,
      resultBytes: (w1.bytes - w0.bytes) / wall,
      backlog: w1.published - c1.tiles,
    };
    log(`M = ${m}: ${JSON.stringify(row)}`);
    return row;
  } finally {
    await Promise.all([stop(coordinator), stop(workers)]);
    // The next M starts on an empty queue and an empty Redis.
    const nc = await connect({ servers: nats });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.delete(RESULT_STREAM, coordinatorConsumer(job)).catch(() => false);
      await jsm.streams.purge(TILE_STREAM).catch(() => undefined);
      await jsm.streams.purge(RESULT_STREAM).catch(() => undefined);
    } finally {
      await nc.close();
    }
    await redis.flushall();
  }
}

const fmt = (x: number, d = 1) => x.toFixed(d);
const human = (s: number) => (s < 120 ? `${fmt(s, 0)} s` : s < 7200 ? `${fmt(s / 60, 1)} min` : `${fmt(s / 3600, 1)} h`);

/** One line per M from the run's own figures, and what bounds M = 10. */
function verdicts(rows: readonly Row[]): string[] {
  const lines = MS.flatMap((m) => {
    const [shipped, off] = [rows.find((r) => r.m === m && r.checkpoints === 'shipped'), rows.find((r) => r.m === m && r.checkpoints === 'off')];
    if (shipped === undefined || off === undefined) return [];
    const gpu = off.planPairs / off.target;
    const alone = (r: Row) => (r.cpu / r.merged.pairs) * r.planPairs;
    const pct = (r: Row) => fmt((100 * r.merged.pairs) / r.target, 0);
    return [
      `- M = ${m}: the simulated workers offered ${fmt((100 * off.offered) / off.target, 0)}% of the 16-GPU rate; the coordinator merged ${pct(off)}% of it without checkpoints in the window (${fmt(100 * off.cpu, 0)}% of a core) and ${pct(shipped)}% with them (${fmt(100 * shipped.cpu, 0)}%). Its CPU per merged pair allows the whole job in ${human(alone(off))} (${human(alone(shipped))} with full checkpoints) against the GPUs' ${human(gpu)}: ${alone(shipped) <= gpu ? 'one coordinator keeps up' : alone(off) <= gpu ? 'the merge path keeps up, full checkpoints do not' : 'one coordinator core does not keep up'}.`,
    ];
  });
  const layers = resnetLayers();
  const n = layers.reduce((a, b) => a + b, 0);
  const floor = 2 * n * layers.length;
  return [
    ...lines,
    `- M = 10 (and nearly M = 100) is bounded by the super-tiles' layer pairs: a super-tile lies within one layer of each model, so the job's results carry at least nF·(G's ${layers.length} layers) + nG·(F's) = ${fmt(floor / 1e9, 2)}e9 entries, ${fmt(floor / ((n * n * 20) / (GPUS * GPU_FLOPS)) / 1e6, 0)}M entries/s over the GPUs' 8 s, beyond one coordinator. At M = 100 the same floor is ${fmt(floor / ((n * n * 200) / (GPUS * GPU_FLOPS)) / 1e6, 1)}M entries/s over 81 s, about what one coordinator core merges on this machine (its CPU per merged pair above): larger super-tiles cannot lower it (with \`max_payload: 32MB\` the rule chose 388,032 neurons a side and the job still had 4,761 super-tiles, one per range of a layer pair), so M = 100 sits at the edge of one coordinator. Next steps: spread the reduction (coordinators each owning a range of F and G neurons, results split by range), or super-tiles across layers whose results carry each neuron's paper and penalized bests (more bytes per entry, far fewer entries).`,
  ];
}

function section(rows: readonly Row[], window: number): string {
  const n = resnetLayers().reduce((a, b) => a + b, 0);
  const table = rows.map((r) => {
    const gpuJob = r.planPairs / r.target;
    // Sustained: results folded in at the rate the GPUs would send them (within 5%).
    const keeps = r.merged.pairs >= 0.95 * r.target;
    // The coordinator's CPU per pair merged, over the whole job: the job time it alone would allow.
    const alone = (r.cpu / r.merged.pairs) * r.planPairs;
    const job = Math.max(gpuJob, r.planPairs / r.merged.pairs);
    return `| ${r.m} | ${r.checkpoints} | ${(r.span * r.block).toLocaleString('en-US')} (${r.span} x ${r.block}) | ${r.tiles.toLocaleString('en-US')} | ${fmt(r.target / 1e12, 2)} | ${fmt(r.offered / 1e12, 2)} | ${fmt(r.merged.pairs / 1e12, 2)} (${fmt((100 * r.merged.pairs) / r.target, 0)}%) ${keeps ? 'yes' : '**no**'} | ${fmt(r.merged.tiles, 1)} | ${fmt(r.merged.entries / 1e6, 1)}M | ${fmt(r.resultBytes / 1e6, 0)} MB/s | ${fmt(r.natsMessages, 0)} | ${fmt(100 * r.cpu, 0)}% | ${fmt(r.rss / 2 ** 30, 2)} GiB | ${r.saves} x ${r.saves > 0 ? fmt(r.saveMs / r.saves / 1000, 2) : '-'} s | ${fmt(r.stall / 1000, 2)} s | ${fmt(r.redisBytes / 1e6, 0)} MB/s | ${human(gpuJob)} | ${human(alone)} | ${human(job)} |`;
  });
  return [
    `### Simulated: one coordinator under 16 GPU workers, ResNet-152 vs ResNet-152`,
    '',
    `Produced by \`npm run bench:coordinator\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}) shared by the coordinator, the simulated workers, nats-server and redis-server (and, while this ran, other work on the machine). ${n.toLocaleString('en-US')} neurons per model (ResNet-152 block outputs at 224 px, \`neurocorr synth --arch resnet152\`), the full size. The coordinator is the real one in its own process, with its defaults (\`--workers 16\`, super-tiles sized by its rule, and each M run twice: checkpoints as shipped, every 256 tiles or 5 s, and checkpoints off during the window, for the merge path alone), incremental checkpoints (chunks of 65,536 neurons merged into since the last one), given the job as the models' layouts alone: layout-only model plans, no activation files. nats-server runs with \`max_payload: ${MAX_PAYLOAD / 2 ** 20}MB\`. Simulated workers pull the real tile messages, hold each for the time a 30 TFLOP/s GPU takes on it (2·M·pairs / 30e12 s, 16 GPUs, 2 tiles in flight each), and publish correctly shaped results; they skip the arithmetic. Each M runs ${window} s of steady state after the first merge and a warm-up; the job itself is not run to its end.`,
    '',
    '| M | checkpoints | super-tile side | super-tiles | GPU rate (Tpairs/s) | offered | merged, sustained? | merges/s | entries/s | results into NATS | NATS msgs/s (tiles + results) | coordinator CPU (of one core) | coordinator RSS | checkpoints in window x Redis write | longest stall | into Redis | job, 16 GPUs | job, coordinator alone | job, extrapolated |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...table,
    '',
    '- "offered" is what the simulated workers published (they share the cores too, so they may fall short of the GPU rate); "merged" is what the coordinator folded into its reduction, counted in `JobProgress.merge`. "job, coordinator alone" is the coordinator\'s CPU seconds per merged pair times the job\'s pairs: the job time one coordinator allows with infinitely fast workers, checkpoints included. "job, extrapolated" is the job\'s pairs over the merged rate, or the GPUs\' time if longer.',
    ...verdicts(rows),
    '- Checkpoints: the count completed in the window and the mean time of the Redis write (`JobStore.save`); "longest stall" is the longest the coordinator\'s event loop was blocked (a checkpoint encodes its chunks in batches of at most 32 MB, so no step blocks it for long); "into Redis" is Redis\'s network input over the window, almost all of it checkpoints. Re-run this after a change to checkpoints to compare.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  provision();
  const window = Number(flag('--seconds') ?? (quick ? 8 : 30));
  // As shipped (every 256 tiles or 5 s), and none in the window: the merge path alone.
  const settings: Checkpoints[] = [
    { label: 'shipped', tiles: 256, seconds: 5 },
    { label: 'off', tiles: 2 ** 30, seconds: 3600 },
  ];
  const warmup = quick ? 3 : 8;
  const [nats, redisServer] = await Promise.all([startNats({ config: [`max_payload: ${MAX_PAYLOAD}`] }), startRedis()]);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  try {
    const rows: Row[] = [];
    const ms = flag('--m')?.split(',').map(Number) ?? MS;
    for (const m of ms) for (const c of settings) rows.push(await measure(m, nats.url, redisServer.url, redis, warmup, window, c));
    const text = section(rows, window);
    process.stdout.write(`${text}\n`);
    if (quick) log('quick run: bench/RESULTS.md left as it is');
    else replaceSubsection(join(ROOT, 'bench', 'RESULTS.md'), '## Cluster', SIMULATED_HEADING, text);
  } finally {
    redis.disconnect();
    await stopAllServers();
  }
}

const role = flag('--role');
if (role === 'coordinator') await coordinatorRole(JSON.parse(args[args.indexOf('--role') + 2]!) as Parameters<typeof coordinatorRole>[0]);
else if (role === 'workers') await workersRole(JSON.parse(args[args.indexOf('--role') + 2]!) as Parameters<typeof workersRole>[0]);
else await main();
