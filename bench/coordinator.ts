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
 * 30 TFLOP/s GPU would take on it, and publish a correctly shaped result
 * (in parts of the spec's size, as a worker sends it).
 * Measures merges/s, the coordinator's CPU and RSS, checkpoints (count,
 * time, bytes into Redis), NATS messages/s, and extrapolates the job time.
 * Writes the "Cluster" subsection "Simulated: ..." of bench/RESULTS.md
 * (`--quick`: short windows, writes nothing; `--seconds N`: the window;
 * `--m 100`: those M only; `--max-payload BYTES`: nats-server's, 8 MiB by
 * default). Each M gets its own fresh nats-server and redis-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { architectureLayers } from '#dist/synth/architectures.js';
import { ClusterCoordinator } from '#dist/coordinator/cluster/coordinator.js';
import { JobStore } from '#dist/coordinator/cluster/job-store.js';
import { jobPlanner, planCuts } from '#dist/coordinator/job-plan.js';
import { JobClock } from '#dist/coordinator/job-timing.js';
import type { ClusterSettings } from '#dist/coordinator/options.js';
import { decodeTile, encodeParts, encodeResult, partEntriesFor, resultSubject, TILE_STREAM, tileConsumer } from '#dist/shared/cluster/index.js';
import { DirectionState, type LayerInfo, type Model } from '#dist/shared/core/index.js';
import { modelPlan } from '#dist/shared/formats/index.js';
import { JobProgress, superEntries, tilePairs, type JobTile, type TileOutcome } from '#dist/shared/job/index.js';
import { allocTileResult, type SuperPart, type TileResult } from '#dist/shared/tiles/index.js';
import { startNats, startRedis } from '../test/helpers/servers.js';
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
  /** Milliseconds spent in JobProgress.accept: the merge itself. */
  readonly mergeMs: number;
  /** The longest the event loop was blocked (ms): encoding a full checkpoint is the longest synchronous step. */
  readonly stall: number;
  readonly plan: { readonly tiles: number; readonly pairs: number; readonly block: number; readonly span: number } | null;
}

async function coordinatorRole(o: { nats: string; redis: string; m: number; job: string; dir: string }): Promise<void> {
  let tiles = 0;
  let entries = 0;
  let pairs = 0;
  let saves = 0;
  let saveMs = 0;
  let mergeMs = 0;
  let plan: CoordinatorLine['plan'] = null;
  // Counted from the product's own merge and checkpoint (benchmark instrumentation, this process only).
  const accept = JobProgress.prototype.accept;
  JobProgress.prototype.accept = function (this: JobProgress, tile: JobTile, outcome: TileOutcome) {
    plan ??= { tiles: this.plan.tiles.length, pairs: this.plan.tiles.reduce((s, t) => s + tilePairs(t), 0), block: this.plan.block, span: this.plan.span };
    const t = performance.now();
    const merged = accept.call(this, tile, outcome);
    mergeMs += performance.now() - t;
    if (merged === 'duplicate') return merged;
    const count = outcome.kind === 'part' ? outcome.part.best.length : outcome.result.rowBest.length + outcome.result.colBest.length;
    entries += count;
    // A part brings its share of its super-tile's pairs, so the rate is smooth even where a window holds few whole super-tiles.
    pairs += tile.kind === 'super' ? (tilePairs(tile) * count) / superEntries(tile) : tilePairs(tile);
    if (merged === 'done') tiles++;
    return merged;
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
    const line: CoordinatorLine = {
      at: performance.timeOrigin + performance.now(),
      tiles,
      entries,
      pairs,
      saves,
      saveMs,
      mergeMs,
      stall: stalls.max / 1e6,
      plan,
    };
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
    // As shipped: every 256 tiles or 5 s (and whenever 512 MB of results wait for one).
    checkpointTiles: 256,
    checkpointSeconds: 5,
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
    stallTimeoutMs: null,
    verify: 0,
    audit: 0,
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
      tile: undefined,
      memory: 0,
      log: (line) => process.stderr.write(`${line}\n`),
      runtime: {
        planner: jobPlanner([f.skeleton(), g.skeleton()], [planCuts(f), planCuts(g)], [{ f: 0, g: 1 }], null),
        clock: new JobClock(),
        onStart: () => undefined,
        onTile: () => undefined,
      },
      finish: never,
      restore: never,
    },
    settings,
  ).run();
}

// ---------------------------------------------------------------- the simulated workers' process

interface WorkersLine {
  readonly pulled: number;
  /** Tiles whose result was published (every part of it). */
  readonly published: number;
  /** Result messages (parts). */
  readonly messages: number;
  readonly bytes: number;
  readonly pairs: number;
}

/** GPUS simulated GPUs, two tiles in flight each (as a worker's --inflight), each tile held for the time the GPU would compute it. */
async function workersRole(o: { nats: string; m: number; job: string }): Promise<void> {
  const nc = await connect({ servers: o.nats, maxPingOut: 100 });
  const js = jetstream(nc);
  let consumer = null;
  while (consumer === null) consumer = await js.consumers.get(TILE_STREAM, tileConsumer(o.job)).catch(() => sleep(200).then(() => null));
  const counts: { pulled: number; published: number; messages: number; bytes: number; pairs: number } = {
    pulled: 0,
    published: 0,
    messages: 0,
    bytes: 0,
    pairs: 0,
  };
  setInterval(() => process.stdout.write(`${JSON.stringify(counts satisfies WorkersLine)}\n`), 1000).unref();
  const partEntries = partEntriesFor(nc.info?.max_payload ?? 1024 * 1024);
  const folded = new Map<number, { part: SuperPart; constant: Uint8Array }>();
  /** A super-tile's folded result of `entries` entries, every partner neuron 0. */
  const foldedOf = (entries: number) => {
    let s = folded.get(entries);
    if (s === undefined) {
      const state = new DirectionState(entries);
      state.best.fill(0.5);
      state.penRho.fill(0.5);
      state.arg.fill(0);
      state.penArg.fill(0);
      s = { part: state.asPart(), constant: new Uint8Array(entries) };
      folded.set(entries, s);
    }
    return s;
  };
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
      if (tile.kind === 'null') {
        msg.term();
        continue;
      }
      const seconds = (2 * o.m * tilePairs(tile)) / GPU_FLOPS;
      gpu.busy = Math.max(gpu.busy, performance.now()) + seconds * 1000;
      const wait = gpu.busy - performance.now();
      if (wait > 0) await sleep(wait);
      let payloads: Uint8Array[];
      if (tile.kind === 'super') {
        const { part, constant } = foldedOf(tile.f.count + tile.g.count);
        payloads = encodeParts(job, tile.id, part, constant, partEntries, provenance);
      } else {
        const { result, constant } = shaped(tile.f.count, tile.g.count);
        payloads = [encodeResult(job, tile.id, result, constant, provenance)];
      }
      for (const payload of payloads) {
        await js.publish(resultSubject(job, 'simulated'), payload);
        counts.messages++;
        counts.bytes += payload.length;
        counts.pairs += tilePairs(tile) / payloads.length;
      }
      msg.ack();
      counts.published++;
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

interface Row {
  readonly m: number;
  /** The job finished inside the window (it was shorter than warm-up and window). */
  readonly finished: boolean;
  readonly block: number;
  readonly span: number;
  readonly tiles: number;
  readonly planPairs: number;
  readonly window: number;
  readonly target: number;
  readonly offered: number;
  readonly merged: { readonly tiles: number; readonly entries: number; readonly pairs: number };
  readonly cpu: number;
  /** Of `cpu`, the share spent merging (JobProgress.accept). */
  readonly mergeCpu: number;
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

/** One M on fresh servers: a backlog of gigabytes in one run's results stream says nothing about the next. */
async function measure(m: number, warmup: number, window: number): Promise<Row> {
  const [natsServer, redisServer] = await Promise.all([startNats({ config: [`max_payload: ${MAX_PAYLOAD}`] }), startRedis()]);
  const [nats, redisUrl] = [natsServer.url, redisServer.url];
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const job = `bench-m${m}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'nc-bench-layout-'));
  const workers = child('workers', { nats, m, job });
  const coordinator = child('coordinator', { nats, redis: redisUrl, m, job, dir });
  const parse = <T>(c: Child): T | null => (c.last() === null ? null : (JSON.parse(c.last()!) as T));
  try {
    const started = Date.now();
    while ((parse<CoordinatorLine>(coordinator)?.tiles ?? 0) === 0) {
      if (coordinator.proc.exitCode !== null) throw new Error(`the coordinator exited: ${coordinator.err()}`);
      if (Date.now() - started > 180_000) throw new Error(`no result merged after 180 s: ${coordinator.err()}\nworkers: ${workers.err()}`);
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
    // A short job (M = 10) may finish inside the window: the coordinator then exits, and its last report ends the window.
    let last = { ...u0, t: t0 };
    let finished = false;
    while (Date.now() < until && !finished) {
      await sleep(500);
      try {
        last = { ...usage(pid), t: Date.now() };
        rss = Math.max(rss, last.rss);
      } catch {
        finished = true;
      }
      finished ||= coordinator.proc.exitCode !== null || coordinator.proc.signalCode !== null;
    }
    const c1 = finished ? parse<CoordinatorLine>(coordinator)! : await lineAfter(coordinator, until, parse<CoordinatorLine>);
    if (!finished) last = { ...usage(pid), t: Date.now() };
    const [u1, t1, w1, r1] = [last, last.t, parse<WorkersLine>(workers)!, await redisInput(redis)];
    const seconds = (c1.at - c0.at) / 1000;
    const wall = (t1 - t0) / 1000;
    const plan = c1.plan!;
    const row: Row = {
      m,
      finished,
      block: plan.block,
      span: plan.span,
      tiles: plan.tiles,
      planPairs: plan.pairs,
      window: seconds,
      target: (GPUS * GPU_FLOPS) / (2 * m),
      offered: (w1.pairs - w0.pairs) / wall,
      merged: { tiles: (c1.tiles - c0.tiles) / seconds, entries: (c1.entries - c0.entries) / seconds, pairs: (c1.pairs - c0.pairs) / seconds },
      cpu: (u1.cpu - u0.cpu) / wall,
      mergeCpu: (c1.mergeMs - c0.mergeMs) / 1000 / seconds,
      rss,
      saves: c1.saves - c0.saves,
      saveMs: c1.saveMs - c0.saveMs,
      stall: c1.stall,
      redisBytes: (r1 - r0) / wall,
      natsMessages: (w1.pulled - w0.pulled + (w1.messages - w0.messages)) / wall,
      resultBytes: (w1.bytes - w0.bytes) / wall,
      backlog: w1.published - c1.tiles,
    };
    log(`M = ${m}: ${JSON.stringify(row)}`);
    return row;
  } finally {
    await Promise.all([stop(coordinator), stop(workers)]);
    const said = coordinator.err().trim();
    if (said !== '') log(`M = ${m}: the coordinator's log (warnings, the last 8000 characters):\n${said}`);
    redis.disconnect();
    await Promise.all([natsServer.stop(), redisServer.stop()]);
  }
}

const fmt = (x: number, d = 1) => x.toFixed(d);
const human = (s: number) => (s < 120 ? `${fmt(s, 0)} s` : s < 7200 ? `${fmt(s / 60, 1)} min` : `${fmt(s / 3600, 1)} h`);

/** One line per M from the run's own figures, and what bounds M = 10. */
function verdicts(rows: readonly Row[]): string[] {
  const lines = rows.map((r) => {
    const gpu = r.planPairs / r.target;
    const alone = (r.cpu / r.merged.pairs) * r.planPairs;
    const end = r.finished ? `the job ran to its end ${human(r.window)} into the window (all ${r.tiles} super-tiles merged); ` : '';
    return `- M = ${r.m}: ${end}the simulated workers offered ${fmt((100 * r.offered) / r.target, 0)}% of the 16-GPU rate; the coordinator merged ${fmt((100 * r.merged.pairs) / r.target, 0)}% of it, with ${fmt(100 * r.cpu, 0)}% of a core (${fmt(100 * r.mergeCpu, 0)}% in the merge itself). Its CPU per merged pair allows the whole job in ${human(alone)}, checkpoints included, against the GPUs' ${human(gpu)}: ${alone <= gpu ? 'one coordinator keeps up' : 'one coordinator core does not keep up'}.`;
  });
  const ten = rows.find((r) => r.m === 10);
  if (ten === undefined) return lines;
  const layers = resnetLayers();
  const n = layers.reduce((a, b) => a + b, 0);
  const ranges = Math.ceil(layers.reduce((a, l) => a + Math.ceil(l / ten.block), 0) / ten.span);
  const gpu = ten.planPairs / ten.target;
  const inflow = (2 * n * ranges) / gpu;
  // Entries one coordinator core takes in per CPU second, measured in this run at M = 10, checkpoints included.
  const perCore = ten.merged.entries / ten.cpu;
  return [
    ...lines,
    `- M = 10 is bounded by load balance, not by message size: a super-tile is at most sqrt(nF·nG/(8·16)) neurons a side (8 per worker; here ${(ten.span * ten.block).toLocaleString('en-US')}, ${ranges} ranges a model), so the job's results carry 2·n·${ranges} = ${fmt((2 * n * ranges) / 1e9, 2)}e9 entries, ${fmt(inflow / 1e6, 0)}M entries/s over the GPUs' ${human(gpu)}. One coordinator core takes in about ${fmt(perCore / 1e6, 1)}M entries per CPU second here, checkpoints included, so one coordinator allows about ${fmt((100 * perCore) / inflow, 0)}% of the 16-GPU rate at M = 10 (the job in ${human(gpu * (inflow / perCore))} instead of ${human(gpu)}). Next step: spread the reduction over coordinators that each own a range of neurons (a worker sends each part to the owner of its neurons; ${Math.ceil(inflow / perCore)} such cores at this rate), or fewer super-tiles per worker (4 instead of 8: 0.7x the entries, at the cost of balance).`,
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
    return `| ${r.m} | ${(r.span * r.block).toLocaleString('en-US')} (${r.span} x ${r.block}) | ${r.tiles.toLocaleString('en-US')} | ${fmt(r.target / 1e12, 2)} | ${fmt(r.offered / 1e12, 2)} | ${fmt(r.merged.pairs / 1e12, 2)} (${fmt((100 * r.merged.pairs) / r.target, 0)}%) ${keeps ? 'yes' : '**no**'} | ${fmt(r.merged.tiles, 1)} | ${fmt(r.merged.entries / 1e6, 1)}M | ${fmt(r.resultBytes / 1e6, 0)} MB/s | ${fmt(r.natsMessages, 0)} | ${fmt(100 * r.cpu, 0)}% (${fmt(100 * r.mergeCpu, 0)}%) | ${fmt(r.rss / 2 ** 30, 2)} GiB | ${r.saves} x ${r.saves > 0 ? fmt(r.saveMs / r.saves / 1000, 2) : '-'} s | ${fmt(r.stall / 1000, 2)} s | ${fmt(r.redisBytes / 1e6, 0)} MB/s | ${human(gpuJob)} | ${human(alone)} | ${human(job)} |`;
  });
  return [
    `### Simulated: one coordinator under 16 GPU workers, ResNet-152 vs ResNet-152`,
    '',
    `Produced by \`npm run bench:coordinator\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}) shared by the coordinator, the simulated workers, nats-server and redis-server (and, while this ran, other work on the machine). ${n.toLocaleString('en-US')} neurons per model (ResNet-152 block outputs at 224 px, \`neurocorr synth --arch resnet152\`), the full size. The coordinator is the real one in its own process, with its defaults (\`--workers 16\`, super-tiles sized by its rule, checkpoints every 256 tiles or 5 s, or once 512 MB of results wait for one), incremental checkpoints (chunks of 65,536 neurons merged into since the last one), given the job as the models' layouts alone: layout-only model plans, no activation files. nats-server runs with \`max_payload: ${MAX_PAYLOAD / 2 ** 20}MB\`. Simulated workers pull the real tile messages, hold each for the time a 30 TFLOP/s GPU takes on it (2·M·pairs / 30e12 s, 16 GPUs, 2 tiles in flight each), and publish correctly shaped results, super-tiles in parts within max_payload as workers send them; they skip the arithmetic. Each M runs on its own fresh nats-server and redis-server, for ${window} s of steady state after the first merge and a warm-up; the job itself is not run to its end.`,
    '',
    '| M | super-tile side | super-tiles | GPU rate (Tpairs/s) | offered | merged, sustained? | merges/s | entries/s | results into NATS | NATS msgs/s (tiles + results) | coordinator CPU of one core (merging) | coordinator RSS | checkpoints in window x Redis write | longest stall | into Redis | job, 16 GPUs | job, coordinator alone | job, extrapolated |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...table,
    '',
    '- "offered" is what the simulated workers published (they share the cores too, so they may fall short of the GPU rate); "merged" is what the coordinator folded into its reduction, counted in `JobProgress.accept` (a part of a super-tile counts its share of its tile\'s pairs, so the rate is smooth when a window holds few whole super-tiles). "job, coordinator alone" is the coordinator\'s CPU seconds per merged pair times the job\'s pairs: the job time one coordinator allows with infinitely fast workers, checkpoints included. "job, extrapolated" is the job\'s pairs over the merged rate, or the GPUs\' time if longer.',
    ...verdicts(rows),
    "- Before super-tiles crossed layers (this benchmark on 2026-11-30, super-tiles within one layer pair, 12-byte entries): every neuron got a result entry from each of the other model's 53 layers at least, a floor of 1.48e9 entries for this pair (4,761 super-tiles at M = 100, against 196 now and 0.39e9 entries of 25 bytes); one coordinator then merged 17% of the 16-GPU rate at M = 100 (its CPU allowed the job in 103 s against the GPUs' 81 s) and 1% at M = 10.",
    '- Checkpoints: the count completed in the window and the mean time of the Redis write (`JobStore.save`); "longest stall" is the longest the coordinator\'s event loop was blocked (a checkpoint encodes its chunks in batches of at most 32 MB, so no step blocks it for long); "into Redis" is Redis\'s network input over the window, almost all of it checkpoints. Re-run this after a change to checkpoints to compare.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  provision();
  const window = Number(flag('--seconds') ?? (quick ? 8 : 30));
  const warmup = quick ? 3 : 8;
  const rows: Row[] = [];
  for (const m of flag('--m')?.split(',').map(Number) ?? MS) rows.push(await measure(m, warmup, window));
  const text = section(rows, window);
  process.stdout.write(`${text}\n`);
  if (quick) log('quick run: bench/RESULTS.md left as it is');
  else replaceSubsection(join(ROOT, 'bench', 'RESULTS.md'), '## Cluster', SIMULATED_HEADING, text);
}

const role = flag('--role');
if (role === 'coordinator') await coordinatorRole(JSON.parse(args[args.indexOf('--role') + 2]!) as Parameters<typeof coordinatorRole>[0]);
else if (role === 'workers') await workersRole(JSON.parse(args[args.indexOf('--role') + 2]!) as Parameters<typeof workersRole>[0]);
else await main();
