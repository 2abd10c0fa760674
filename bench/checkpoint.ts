/**
 * `npm run bench:checkpoint`: what one checkpoint of a cluster job costs at
 * ResNet-152 scale (13.95M neurons per model, two models), against a real
 * redis-server on loopback. Before: the whole snapshot earlier versions
 * wrote as one value. After: the incremental checkpoint, first in full (every
 * chunk), then after the tiles of one checkpoint interval of a 16-GPU job, and
 * a restore. Writes the "## Checkpoints" section of bench/RESULTS.md
 * (`--quick`: 1.4M neurons per model, RESULTS.md left as it is).
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CheckpointStore } from '#dist/coordinator/cluster/checkpoint-store.js';
import { architectureLayers } from '#dist/synth/architectures.js';
import { jobKeys } from '#dist/shared/cluster/index.js';
import type { LayerInfo, Model } from '#dist/shared/core/index.js';
import { CorruptStateError } from '#dist/shared/errors.js';
import { encodeCheckpoint, JobProgress, operands, planJob, restoreCheckpoint, type JobPlan, type JobTile } from '#dist/shared/job/index.js';
import { allocTileResult, type TileResult } from '#dist/shared/tiles/index.js';
import { startRedis, stopAllServers } from '../test/helpers/servers.js';
import { provision } from '../test/setup/tools.js';
import { replaceSection } from './results.js';

const ROOT = join(import.meta.dirname, '..', '..');
const quick = process.argv.includes('--quick');
const log = (line: string) => process.stderr.write(`bench:checkpoint: ${line}\n`);
const seconds = (start: number) => (performance.now() - start) / 1000;
const ROUNDS = quick ? 1 : 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median seconds of `ROUNDS` runs of `once` (round r), and its last value. */
async function timed<T>(once: (round: number) => Promise<T>, before: (round: number) => void = () => undefined): Promise<{ seconds: number; value: T }> {
  const times: number[] = [];
  let value: T | undefined;
  for (let r = 0; r < ROUNDS; r++) {
    before(r);
    const t = performance.now();
    value = await once(r);
    times.push(seconds(t));
  }
  return { seconds: median(times), value: value! };
}

/** ResNet-152's block outputs at 224 px (scaled down by 10 with --quick), as a model of that many neurons in its real layers. */
function resnet(path: string): Model {
  let start = 0;
  const layers: LayerInfo[] = [];
  architectureLayers('resnet152', 224, 1, false).forEach((l, depth) => {
    const full = l.shape.reduce((a, b) => a * b, 1);
    const count = quick ? Math.ceil(full / 10) : full;
    layers.push({ name: l.name, depth, source: l.name, shape: [count], start, count, total: count, constant: 0 });
    start += count;
  });
  return { path, probes: 1000, m: 1000, n: start, layers, z: new Float32Array(0), constant: new Uint8Array(start), ids: null, fingerprint: null };
}

/** Folds in a zero result for each tile (what is merged does not matter here, only which chunks it touches). */
function mergeAll(p: JobProgress, tiles: readonly JobTile[]): void {
  const results = new Map<string, TileResult>();
  for (const tile of tiles) {
    const { rows, cols } = operands(p.plan, tile);
    const key = `${rows.block.count}x${cols.block.count}`;
    let result = results.get(key);
    if (result === undefined) results.set(key, (result = allocTileResult(rows.block.count, cols.block.count)));
    p.accept(tile, { kind: 'tile', result, constant: new Uint8Array(rows.block.count + cols.block.count), seconds: 0 });
  }
}

/** The tiles of the `round`-th square of k x k blocks on the diagonal from an eighth into each model (clear of the intervals' rows): an order that is not built, for comparison. */
function square(plan: JobPlan, k: number, round: number): JobTile[] {
  const fStarts = [...new Set(plan.tiles.map((t) => (t.kind === 'main' ? t.f.start : -1)))].filter((s) => s >= 0);
  const gStarts = [...new Set(plan.tiles.map((t) => (t.kind === 'main' ? t.g.start : -1)))].filter((s) => s >= 0);
  const at = (fStarts.length >> 3) + round * k;
  const f = new Set(fStarts.slice(at, at + k));
  const g = new Set(gStarts.slice(at, at + k));
  return plan.tiles.filter((t) => t.kind === 'main' && f.has(t.f.start) && g.has(t.g.start));
}

interface Row {
  readonly label: string;
  readonly bytes: number;
  readonly chunks: string;
  readonly seconds: number | null;
  /** The whole-snapshot time this row compares with. */
  readonly base?: number;
  readonly note: string;
}

async function main(): Promise<void> {
  provision();
  const server = await startRedis();
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  try {
    const models = [resnet('f'), resnet('g')];
    const n = models[0]!.n;
    // The 16-GPU case of the "On paper" table (## Cluster) at M = 1000: tiles of 20 ms, 800 tiles/s across 16 GPUs.
    const block = Math.ceil(Math.sqrt((0.02 * 30e12) / (2 * 1000)) / 1024) * 1024;
    const tilesPerSecond = 16 / 0.02;
    const plan = planJob(models, [{ f: 0, g: 1 }], { block, nulls: [{ permutations: 0, sample: 0, seed: 1 }] });
    const p = new JobProgress(plan);
    log(`${n.toLocaleString('en-US')} neurons per model, block ${block}, ${plan.tiles.length.toLocaleString('en-US')} tiles, ${p.chunks.total} chunks`);
    const rows: Row[] = [];
    const mb = (b: number) => (b / 1e6).toFixed(1);

    // Before: one value holding the whole state, in one MULTI (as JobStore.save wrote it).
    const prefix = `bench-ckpt-${process.pid}`;
    const wholeKey = jobKeys('whole', prefix).checkpoint;
    mergeAll(p, plan.tiles.slice(0, 1));
    const encoded = await timed(() => Promise.resolve(encodeCheckpoint(p)));
    const whole = encoded.value;
    const encodeSeconds = encoded.seconds;
    const setWhole = async (client: Redis) => {
      const start = performance.now();
      const out = await client
        .multi()
        .set(wholeKey, Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength))
        .exec();
      const err = out?.[0]?.[0];
      if (err) throw err;
      return seconds(start);
    };
    let refused = '';
    // Redis drops the connection on a value over its limit: a client of its own that does not reconnect and resend.
    const once = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null, autoResendUnfulfilledCommands: false });
    once.on('error', (err: Error) => (refused ||= err.message));
    try {
      await setWhole(once);
    } catch (err) {
      refused = (err as Error).message.split('\n')[0]!;
    } finally {
      once.disconnect();
    }
    rows.push({
      label: 'before: whole snapshot, default Redis',
      bytes: whole.byteLength,
      chunks: '1 value',
      seconds: null,
      note: refused ? `fails: \`${refused}\` (Redis closes the connection on a value over 512 MB)` : 'stored',
    });
    log(`whole snapshot: ${mb(whole.byteLength)} MB, encoded in ${encodeSeconds.toFixed(2)} s, ${refused || 'stored'}`);
    // The same write with Redis's limits raised, to time it.
    await redis.config('SET', 'proto-max-bulk-len', String(4 * 1024 ** 3));
    await redis.config('SET', 'client-query-buffer-limit', String(4 * 1024 ** 3));
    const wholeSeconds = encodeSeconds + (await timed(() => setWhole(redis))).seconds;
    rows.push({
      label: 'before: whole snapshot, proto-max-bulk-len raised',
      bytes: whole.byteLength,
      chunks: '1 value',
      seconds: wholeSeconds,
      base: wholeSeconds,
      note: 'encode + one SET',
    });
    const wholeRestored = new JobProgress(plan);
    const wholeRestoreSeconds = (await timed(async () => restoreCheckpoint((await redis.getBuffer(wholeKey))!, wholeRestored))).seconds;
    rows.push({
      label: 'before: restore the whole snapshot, limit raised',
      bytes: whole.byteLength,
      chunks: '1 value',
      seconds: wholeRestoreSeconds,
      base: wholeRestoreSeconds,
      note: 'one GET + decode',
    });
    await redis.del(wholeKey);

    // After: the first checkpoint of a job whose every chunk changed, then the tiles of one interval, then a restore.
    const store = new CheckpointStore(redis, 'chunks', prefix, (key, why) => new CorruptStateError('chunks', key, `${key} ${why}`));
    const fullRun = await timed(
      () => store.write(p),
      () => p.chunks.markAll(),
    );
    const full = fullRun.value;
    rows.push({
      label: 'after: first checkpoint, every chunk',
      bytes: full.bytes,
      chunks: String(full.chunks),
      seconds: fullRun.seconds,
      base: wholeSeconds,
      note: 'the worst case: every chunk changed',
    });
    log(`full: ${full.chunks} chunks, ${mb(full.bytes)} MB in ${fullRun.seconds.toFixed(2)} s`);

    let mid = plan.tiles.length >> 1;
    let intervalBytes = 0;
    for (const [interval, label] of [
      [5, 'the default --checkpoint-seconds 5'],
      [60, '--checkpoint-seconds 60'],
    ] as const) {
      const count = Math.round(interval * tilesPerSecond);
      // Each round the next run of tiles in plan order, as consecutive intervals of the job.
      const run = await timed(
        () => store.write(p),
        (r) => mergeAll(p, plan.tiles.slice(mid + r * count, mid + (r + 1) * count)),
      );
      const w = run.value;
      mid += ROUNDS * count;
      if (interval === 5) intervalBytes = w.bytes;
      rows.push({
        label: `after: one interval of ${interval} s (${count.toLocaleString('en-US')} tiles in plan order)`,
        bytes: w.bytes,
        chunks: String(w.chunks),
        seconds: run.seconds,
        base: wholeSeconds,
        note: `${label}: the F rows of the interval, and every G block, so the whole backward state`,
      });
      log(`${interval} s interval: ${w.chunks} chunks, ${mb(w.bytes)} MB in ${run.seconds.toFixed(2)} s`);
    }
    const k = Math.round(Math.sqrt(5 * tilesPerSecond));
    const sqRun = await timed(
      () => store.write(p),
      (r) => mergeAll(p, square(plan, k, r)),
    );
    const sq = sqRun.value;
    rows.push({
      label: `after: ${k * k} tiles as a ${k} x ${k} square of blocks`,
      bytes: sq.bytes,
      chunks: String(sq.chunks),
      seconds: sqRun.seconds,
      base: wholeSeconds,
      note: 'an order that is not built (tiles go out F-major), for comparison',
    });
    const nothing = await timed(() => store.write(p));
    rows.push({ label: 'after: nothing changed', bytes: nothing.value.bytes, chunks: '0', seconds: nothing.seconds, note: 'the manifest commit alone' });

    let restored = new JobProgress(plan);
    const restoreSeconds = (
      await timed(
        () => new CheckpointStore(redis, 'chunks', prefix, (key, why) => new CorruptStateError('chunks', key, `${key} ${why}`)).load(restored),
        () => (restored = new JobProgress(plan)),
      )
    ).seconds;
    if (!Buffer.from(encodeCheckpoint(restored)).equals(Buffer.from(encodeCheckpoint(p))))
      throw new Error('the restored checkpoint differs from the state written');
    rows.push({
      label: 'after: restore every chunk',
      bytes: full.bytes,
      chunks: String(p.chunks.total),
      seconds: restoreSeconds,
      base: wholeRestoreSeconds,
      note: 'bit-identical to the state written (checked)',
    });
    log(`restore: ${restoreSeconds.toFixed(2)} s`);

    const fmt = (s: number | null) => (s === null ? '-' : s.toFixed(2));
    const ratio = (r: Row) => (r.seconds === null || r.base === undefined ? '-' : `${(r.base / r.seconds).toFixed(1)}x`);
    const section = [
      '## Checkpoints',
      '',
      `Produced by \`npm run bench:checkpoint\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), a real redis-server on loopback on the same cores. Two models of ResNet-152's block outputs at 224 px, ${n.toLocaleString('en-US')} neurons each, one pair, no null: ${mb(whole.byteLength)} MB of coordinator state. Tiles of ${block} neurons, as in the 16-GPU case of "On paper" above (M = 1000, 20 ms per tile, ${tilesPerSecond} tiles/s), ${plan.tiles.length.toLocaleString('en-US')} tiles. Incremental checkpoints cut the state into chunks of ${p.chunks.length.toLocaleString('en-US')} neurons (2 MiB of a direction state), ${p.chunks.total} in all. Median of ${ROUNDS} runs (each interval round: the next tiles of the plan); times are wall seconds of the write (the whole snapshot: encode and SET). The load average was ${loadavg()[0]!.toFixed(1)} at the end of the run: on a shared machine the times are noisy, the bytes exact.`,
      '',
      '| checkpoint | MB | chunks | seconds | speed-up vs the whole snapshot | note |',
      '| --- | ---: | ---: | ---: | ---: | --- |',
      ...rows.map((r) => `| ${r.label} | ${mb(r.bytes)} | ${r.chunks} | ${fmt(r.seconds)} | ${ratio(r)} | ${r.note} |`),
      '',
      `- The whole snapshot, the only checkpoint before issue 16, cannot be stored at this size: Redis refuses a value over 512 MB (\`proto-max-bulk-len\`), so such a job could not checkpoint at all. Chunks are 2 MiB at most, and a write holds at most 32 MB of them in memory, not a copy of the state.`,
      `- A checkpoint writes the chunks merged into since the last one. Tiles go out F-major (one F block against every G block in turn), so any interval that spans a whole F row touches every G neuron: the backward state is rewritten whole each time, and an interval writes ${((100 * intervalBytes) / full.bytes).toFixed(0)}% of a full checkpoint. Sending tiles in squares of blocks (the square row: as many tiles as 5 s of this job) would make it ${((100 * sq.bytes) / full.bytes).toFixed(0)}%; that order is not built (it would change tile ids, and workers' caching of one F block).`,
      '- A restart reads every chunk the manifest names (the restore rows); the results after the last checkpoint come again from the results stream. The first checkpoint of a new job writes nothing but the manifest: chunks never merged into keep their initial values.',
      '',
      '',
    ].join('\n');
    process.stdout.write(`${section}\n`);
    if (quick) log('quick run: bench/RESULTS.md left as it is');
    else replaceSection(join(ROOT, 'bench', 'RESULTS.md'), '## Checkpoints', section);
  } finally {
    redis.disconnect();
    await stopAllServers();
  }
}

await main();
