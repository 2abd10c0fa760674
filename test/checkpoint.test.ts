/**
 * Incremental checkpoints (issue 16): only the chunks merged into since the
 * last checkpoint are written, a restore gives back the progress bit for bit,
 * a write that crashed before its manifest leaves the previous checkpoint in
 * force, and a coordinator killed mid-job resumes to the embedded score.
 * Against a real redis-server (and nats-server for the end-to-end runs).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../dist/coordinator/cluster/checkpoint-store.js';
import { checkpointChunkKey, jobKeys } from '../dist/shared/cluster/index.js';
import type { LayerInfo, Model } from '../dist/shared/core/index.js';
import { CorruptStateError } from '../dist/shared/errors.js';
import { encodeCheckpoint, JobProgress, operands, planJob, type JobPlan, type JobTile } from '../dist/shared/job/index.js';
import { allocTileResult } from '../dist/shared/tiles/index.js';
import { coordinatorArgs, jobNames, killAll, ready, spawnCli, startWorker, waitFor, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, rng, writeNpyDir } from './helpers/models.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './helpers/servers.js';

let redisServer: RedisServer;
let redis: Redis;

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
});
afterEach(killAll);
afterAll(async () => {
  redis.disconnect();
  await killAll();
  await stopAllServers();
});

const names = jobNames('ckpt');

const corrupt = (key: string, why: string) => new CorruptStateError('test', key, `Redis key ${key} ${why}`);
const store = (job: string, prefix: string) => new CheckpointStore(redis, job, prefix, corrupt);

function model(path: string, counts: readonly number[]): Model {
  let start = 0;
  const layers: LayerInfo[] = counts.map((count, depth) => {
    const l = { name: `l${depth}`, depth, source: 's', shape: [count], start, count, total: count, constant: 0 };
    start += count;
    return l;
  });
  return { path, probes: 4, m: 4, n: start, layers, z: new Float32Array(0), constant: new Uint8Array(start), ids: null, fingerprint: null };
}

/** Three models (a layer of one neuron among them), two pairs, each with a null. */
function smallPlan(): JobPlan {
  const models = [model('a', [37, 1, 60]), model('b', [50, 41]), model('c', [1, 29])];
  const nulls = [
    { permutations: 2, sample: 20, seed: 3 },
    { permutations: 1, sample: 9, seed: 4 },
  ];
  return planJob(
    models,
    [
      { f: 0, g: 1 },
      { f: 0, g: 2 },
    ],
    { block: 16, nulls },
  );
}

/** A made-up result for `tile`, with ties (values on a grid of eighths) and constant flags. */
function merge(p: JobProgress, tile: JobTile, r: () => number): boolean {
  const { rows, cols } = operands(p.plan, tile);
  const result = allocTileResult(rows.block.count, cols.block.count);
  const fill = (best: Float64Array, arg: Uint32Array, n: number) => {
    for (let i = 0; i < best.length; i++) {
      best[i] = Math.round(r() * 8) / 8;
      arg[i] = Math.floor(r() * n);
    }
  };
  fill(result.rowBest, result.rowArg, cols.block.count);
  fill(result.colBest, result.colArg, rows.block.count);
  const constant = tile.kind === 'main' ? Uint8Array.from({ length: rows.block.count + cols.block.count }, () => (r() < 0.05 ? 1 : 0)) : null;
  return p.accept(tile, { kind: 'tile', result, constant, seconds: 0 }) === 'done';
}

const same = (a: JobProgress, b: JobProgress) => Buffer.from(encodeCheckpoint(a)).equals(Buffer.from(encodeCheckpoint(b)));

function shuffled<T>(items: readonly T[], r: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('incremental checkpoints in Redis', () => {
  it('merging marks exactly the chunks it writes', () => {
    const p = new JobProgress(smallPlan(), 8);
    const tile = p.plan.tiles.find((t) => t.kind === 'main' && t.pair === 1 && t.f.start === 16)!;
    merge(p, tile, rng(1));
    expect(tile.kind === 'main' && tile.g.count).toBe(1);
    // Neurons 16..31 of model a: chunks 2 and 3 of pair 1's forward state and of a's flags; one chunk of the backward state, of c's flags, of the done set.
    expect(p.chunks.take().ids).toHaveLength(2 + 1 + 2 + 1 + 1);
    expect(p.chunks.take().ids).toEqual([]);
    expect(merge(p, tile, rng(2))).toBe(false);
    expect(p.chunks.pending).toBe(0);
  });

  it('restores bit for bit after every one of many incremental checkpoints, results merged in any order and twice', async () => {
    const { job, prefix } = names();
    const r = rng(7);
    const live = new JobProgress(smallPlan(), 8);
    const writer = store(job, prefix);
    const tiles = shuffled(live.plan.tiles, r);
    let at = 0;
    let writes = 0;
    while (at < tiles.length) {
      const next = at + 1 + Math.floor(r() * 25);
      for (const tile of tiles.slice(at, next)) merge(live, tile, r);
      // A duplicate of an earlier result: merged again, it changes nothing.
      if (at > 0) expect(merge(live, tiles[Math.floor(r() * at)]!, r)).toBe(false);
      at = next;
      const w = await writer.write(live);
      expect(w.generation).toBe(++writes);
      const restored = new JobProgress(smallPlan(), 8);
      expect(await store(job, prefix).load(restored)).toBe(true);
      expect(same(restored, live)).toBe(true);
      expect(restored.doneTiles).toBe(live.doneTiles);
      expect(restored.chunks.pending).toBe(0);
    }
    expect(live.complete).toBe(true);
    expect(writes).toBeGreaterThan(5);
    // Old versions are deleted as new ones are committed: one key per stored chunk, plus the manifest.
    const manifest = await redis.hgetall(jobKeys(job, prefix).checkpoint);
    const stored = Object.keys(manifest).filter((f) => /^\d+$/.test(f)).length;
    expect(await redis.keys(`${prefix}:*`)).toHaveLength(stored + 1);
  });

  it('a crash between the chunk writes and the manifest: the previous checkpoint is restored, and the job ends exact', async () => {
    const { job, prefix } = names();
    const r = rng(11);
    const plan = smallPlan();
    const live = new JobProgress(plan, 8);
    const tiles = shuffled(plan.tiles, r);
    const half = Math.floor(tiles.length / 2);
    const results = new Map<number, number>();
    // Each tile's result is drawn from its own seed, so a replay gives the same one.
    const mergeSeeded = (p: JobProgress, tile: JobTile) => merge(p, tile, rng(1000 + tile.id));
    for (const tile of tiles.slice(0, half)) results.set(tile.id, Number(mergeSeeded(live, tile)));
    const first = store(job, prefix);
    await first.write(live);
    const atCheckpoint = new JobProgress(plan, 8);
    await store(job, prefix).load(atCheckpoint);
    for (const tile of tiles.slice(half, half + 40)) mergeSeeded(live, tile);
    const staged = await first.stage(live);
    expect(staged.ids.length).toBeGreaterThan(0);
    // The coordinator dies here: its new chunks are in Redis, the manifest does not name them.
    const orphan = checkpointChunkKey(job, prefix, staged.ids[0]!, staged.generation);
    expect(await redis.pttl(orphan)).toBeGreaterThan(0);
    const resumed = new JobProgress(plan, 8);
    const second = store(job, prefix);
    expect(await second.load(resumed)).toBe(true);
    expect(same(resumed, atCheckpoint)).toBe(true);
    // The restore removed the dead coordinator's uncommitted chunks.
    expect(await redis.exists(orphan)).toBe(0);
    // The results not in the checkpoint are delivered again; the job finishes as an undisturbed one does.
    for (const tile of tiles.slice(half)) mergeSeeded(resumed, tile);
    await second.write(resumed);
    const reference = new JobProgress(plan, 8);
    for (const tile of plan.tiles) mergeSeeded(reference, tile);
    expect(same(resumed, reference)).toBe(true);
    const last = new JobProgress(plan, 8);
    await store(job, prefix).load(last);
    expect(same(last, reference)).toBe(true);
    // The write the dead coordinator never committed can no longer commit over the new one.
    await expect(first.commit(live, staged)).rejects.toMatchObject({ code: 'E_LEASE_LOST' });
  });

  it('a commit whose reply was lost: the next write learns it happened, takes the next generation, and leaves no named chunk to expire', async () => {
    const { job, prefix } = names();
    let lose = true;
    // Redis commits the MULTI, then the reply never arrives.
    const lossy = new Proxy(redis, {
      get(target, prop) {
        if (prop === 'multi' && lose) {
          return () => {
            const tx = target.multi();
            const exec = tx.exec.bind(tx);
            tx.exec = async () => {
              await exec();
              throw new Error('connection lost before the reply');
            };
            return tx;
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const r = rng(21);
    const p = new JobProgress(smallPlan(), 8);
    const writer = new CheckpointStore(lossy, job, prefix, corrupt);
    for (const tile of p.plan.tiles.slice(0, 40)) merge(p, tile, r);
    await expect(writer.write(p)).rejects.toThrow(/connection lost/);
    lose = false;
    for (const tile of p.plan.tiles.slice(40, 60)) merge(p, tile, r);
    expect((await writer.write(p)).generation).toBe(2);
    const restored = new JobProgress(smallPlan(), 8);
    await store(job, prefix).load(restored);
    expect(same(restored, p)).toBe(true);
    const keys = await redis.keys(`${prefix}:*`);
    for (const key of keys) expect(await redis.pttl(key), key).toBe(-1);
  });

  it('writes bytes in proportion to the chunks touched, not to the job', async () => {
    const { job, prefix } = names();
    const n = 200_000;
    const plan = planJob([model('a', [n]), model('b', [n])], [{ f: 0, g: 1 }], { block: 4096, nulls: [{ permutations: 0, sample: 0, seed: 1 }] });
    const p = new JobProgress(plan, 4096);
    const writer = store(job, prefix);
    p.chunks.markAll();
    const full = await writer.write(p);
    expect(full.chunks).toBe(p.chunks.total);
    // The whole state, less the whole form's header (magic, count, six sizes).
    expect(full.bytes).toBe(encodeCheckpoint(p).byteLength - 4 * 8);
    expect((await writer.write(p)).bytes).toBe(0);
    // One tile of 4096 x 4096 neurons at an aligned block: one chunk of each state, of each model's flags, and of the done set.
    merge(p, plan.tiles[50]!, rng(3));
    const small = await writer.write(p);
    expect(small.chunks).toBe(5);
    expect(small.bytes).toBe(2 * 4096 * 32 + 2 * 4096 + plan.tiles.length);
    expect(small.bytes / full.bytes).toBeLessThan(0.025);
    const restored = new JobProgress(plan, 4096);
    await store(job, prefix).load(restored);
    expect(same(restored, p)).toBe(true);
  });

  it('Redis lost the checkpoint: the next write stores all of it again', async () => {
    const { job, prefix } = names();
    const r = rng(5);
    const p = new JobProgress(smallPlan(), 8);
    const writer = store(job, prefix);
    for (const tile of p.plan.tiles.slice(0, 30)) merge(p, tile, r);
    await writer.write(p);
    for (const key of await redis.keys(`${prefix}:*`)) await redis.del(key);
    merge(p, p.plan.tiles[40]!, r);
    const w = await writer.write(p);
    expect(w.full).toBe(true);
    expect(w.chunks).toBe(p.chunks.total);
    const restored = new JobProgress(smallPlan(), 8);
    await store(job, prefix).load(restored);
    expect(same(restored, p)).toBe(true);
  });

  it('a whole checkpoint of an earlier version is restored, then replaced by chunks', async () => {
    const { job, prefix } = names();
    const r = rng(9);
    const p = new JobProgress(smallPlan(), 8);
    for (const tile of p.plan.tiles.slice(0, 50)) merge(p, tile, r);
    await redis.set(jobKeys(job, prefix).checkpoint, Buffer.from(encodeCheckpoint(p)));
    const resumed = new JobProgress(smallPlan(), 8);
    const writer = store(job, prefix);
    expect(await writer.load(resumed)).toBe(true);
    expect(same(resumed, p)).toBe(true);
    await writer.write(resumed);
    expect(await redis.type(jobKeys(job, prefix).checkpoint)).toBe('hash');
    const again = new JobProgress(smallPlan(), 8);
    await store(job, prefix).load(again);
    expect(same(again, p)).toBe(true);
  });

  it('refuses a checkpoint of another plan or chunk length, and names a missing chunk', async () => {
    const { job, prefix } = names();
    const p = new JobProgress(smallPlan(), 8);
    merge(p, p.plan.tiles[0]!, rng(1));
    await store(job, prefix).write(p);
    await expect(store(job, prefix).load(new JobProgress(smallPlan(), 16))).rejects.toThrow(/does not fit this job/);
    const manifest = await redis.hgetall(jobKeys(job, prefix).checkpoint);
    const [id, gen] = Object.entries(manifest).find(([f]) => /^\d+$/.test(f))!;
    const key = checkpointChunkKey(job, prefix, Number(id), Number(gen));
    await redis.del(key);
    await expect(store(job, prefix).load(new JobProgress(smallPlan(), 8))).rejects.toThrow(`Redis key ${key} is missing`);
  });
});

describe('a cluster job with incremental checkpoints', () => {
  const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
  const latent = latents(91, 24, 3);
  const fDir = writeNpyDir(genModel(92, { m: 24, layers: [[100], [4, 5, 5], [60]], latent, constants: 0.05, duplicates: 0.1 }));
  const gDir = writeNpyDir(genModel(93, { m: 24, layers: [[120], [1], [40]], latent }));
  const NULL = ['--null', '2', '--null-sample', '30'];
  // Chunks of 8 neurons: each model's state is many chunks, as a large model's is.
  const ENV = { NEUROCORR_CHECKPOINT_CHUNK: '8' };
  let nats: NatsServer;
  let reference: { scores: unknown; null: { scores: unknown } | null };

  beforeAll(async () => {
    nats = await startNats();
    const r = spawnSync(process.execPath, [BIN, 'score', fDir, gDir, '--json', '--no-progress', ...NULL], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    reference = JSON.parse(r.stdout) as typeof reference;
  });

  const coordinator = (job: string, prefix: string): CliProcess =>
    spawnCli(
      coordinatorArgs({
        f: fDir,
        g: gDir,
        nats: nats.url,
        redis: redisServer.url,
        job,
        prefix,
        tile: 16,
        checkpointTiles: 3,
        checkpointSeconds: 0.2,
        extra: NULL,
      }),
      ENV,
    );

  it('SIGKILLed twice mid-job and resumed: the score is the embedded one bit for bit; a finished job keeps no key without a TTL, and --delete removes them all', async () => {
    const { job, prefix } = names();
    const workers = Array.from({ length: 2 }, () => startWorker(nats.url, { NEUROCORR_WORKER_FAULT: 'slow:40' }));
    await Promise.all(workers.map((w) => ready(w)));
    const done = async () => Number((await redis.hget(jobKeys(job, prefix).state, 'done')) ?? 0);
    let resumed = '';
    for (const threshold of [15, 60]) {
      const c = coordinator(job, prefix);
      await waitFor(`${threshold} tiles`, async () => (await done()) >= threshold);
      c.kill('SIGKILL');
      await c.exited;
      resumed += c.stderr();
    }
    const manifest = await redis.hgetall(jobKeys(job, prefix).checkpoint);
    expect(Object.keys(manifest).filter((f) => /^\d+$/.test(f)).length).toBeGreaterThan(10);
    const last = coordinator(job, prefix);
    expect(await last.exited, last.stderr()).toBe(0);
    expect(resumed + last.stderr()).toMatch(/resuming from checkpoint/);
    const report = JSON.parse(last.stdout()) as typeof reference;
    expect(report.scores).toEqual(reference.scores);
    expect(report.null?.scores).toEqual(reference.null?.scores);
    const keys = await redis.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThan(10);
    // Every key of the job expires; the index of jobs is shared, and the lease was released.
    expect(keys).toContain(jobKeys(job, prefix).checkpoint);
    for (const key of keys.filter((k) => k !== `${prefix}:jobs`)) expect(await redis.ttl(key), key).toBeGreaterThan(0);
    const del = spawnCli(['jobs', '--redis', redisServer.url, '--prefix', prefix, '--delete', job]);
    expect(await del.exited, del.stderr()).toBe(0);
    expect(await redis.keys(`${prefix}:*`)).toEqual([]);
  });
});
