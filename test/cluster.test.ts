/**
 * Cluster mode against real servers: a coordinator and workers as separate OS
 * processes, NATS JetStream and Redis started per file on free ports. Every
 * run, disturbed or not, must give the embedded run's score bit for bit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobKeys } from '../dist/shared/cluster/index.js';
import { coordinatorArgs, jobNames, ready, spawnCli, startWorker, waitFor, useClusterServers, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const latent = latents(71, 24, 3);
const F = genModel(72, { m: 24, layers: [[100], [4, 5, 5], [60]], latent, constants: 0.05, duplicates: 0.1 });
const G = genModel(73, { m: 24, layers: [[120], [80]], latent, duplicates: 0.1 });
const fDir = writeNpyDir(F);
const gDir = writeNpyDir(G);
const TILE = 16;
// A small null keeps the tile count (and so these tests) short; the embedded reference uses the same.
const NULL = ['--null', '2', '--null-sample', '40'];
const TILES = (7 + 7 + 4) * (8 + 5);

interface Report {
  scores: unknown;
  layers: unknown;
  constant: unknown;
  tiles: number;
  null: { tiles: number; scores: unknown } | null;
  cluster: { job: string; workers: string[]; duplicates: number; redelivered: number; republished: number };
}

function embedded(f = fDir, g = gDir): Report {
  const r = spawnSync(process.execPath, [BIN, 'score', f, g, '--json', '--no-progress', ...NULL], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

const cluster = useClusterServers();
let reference: Report;

beforeAll(async () => {
  reference = embedded();
});

const names = jobNames('test');

function coordinator(job: string, prefix: string, extra: string[] = [], f = fDir, g = gDir): CliProcess {
  const servers = { nats: cluster.nats.url, redis: cluster.redisServer.url };
  return spawnCli(coordinatorArgs({ f, g, ...servers, job, prefix, tile: TILE, checkpointTiles: 8, checkpointSeconds: 0.3, extra: [...NULL, ...extra] }));
}

async function finished(c: CliProcess): Promise<Report> {
  const code = await c.exited;
  expect(code, c.stderr()).toBe(0);
  return JSON.parse(c.stdout()) as Report;
}

function expectExact(report: Report, expected = reference, tiles: number | null = TILES): void {
  expect(report.scores).toEqual(expected.scores);
  expect(report.layers).toEqual(expected.layers);
  expect(report.constant).toEqual(expected.constant);
  expect(report.null?.scores).toEqual(expected.null?.scores);
  if (tiles !== null) expect(report.tiles).toBe(tiles);
}

async function doneTiles(job: string, prefix: string): Promise<number> {
  return Number((await cluster.redis.hget(jobKeys(job, prefix).state, 'done')) ?? 0);
}

async function workers(n: number, env: Record<string, string> = {}, extra: string[] = []): Promise<CliProcess[]> {
  const list = Array.from({ length: n }, () => startWorker(cluster.nats.url, env, extra));
  await Promise.all(list.map((w) => ready(w)));
  return list;
}

describe('cluster runs', () => {
  it('an undisturbed run of a coordinator and 2 workers matches the embedded run bit for bit', async () => {
    const { job, prefix } = names();
    const ws = await workers(2);
    const c = coordinator(job, prefix);
    const report = await finished(c);
    expectExact(report);
    // A small job cannot be held up by the coordinator's merge: no warning that it runs at the coordinator's pace.
    expect(c.stderr()).toMatch(/"msg":"planned"/);
    expect(c.stderr()).not.toMatch(/coordinator's pace/);
    expect(report.cluster.job).toBe(job);
    expect(report.cluster.workers).toHaveLength(2);
    expect(report.cluster).toMatchObject({ duplicates: 0, redelivered: 0, republished: 0 });
    for (const w of ws) expect(w.stderr()).toMatch(/"kernel":"native-/);

    const jobs = spawnCli(['jobs', '--redis', cluster.redisServer.url, '--prefix', prefix, '--json']);
    expect(await jobs.exited).toBe(0);
    const all = TILES + report.null!.tiles;
    expect(JSON.parse(jobs.stdout())).toMatchObject([{ job, status: 'done', done: all, tiles: all }]);
    // Running a finished job again returns its stored report.
    expectExact(await finished(coordinator(job, prefix)));
  });

  it('(a) a worker SIGKILLed in the middle of a tile: the tile is redelivered', async () => {
    const { job, prefix } = names();
    // The victim holds each tile 2 s before computing it, so the kill always lands mid-tile, before its result is sent.
    const [[victim]] = await Promise.all([workers(1, { NEUROCORR_WORKER_FAULT: 'slow:2000' }), workers(1, { NEUROCORR_WORKER_FAULT: 'slow:60' })]);
    const c = coordinator(job, prefix);
    await waitFor('the first checkpoint', async () => (await doneTiles(job, prefix)) >= 8);
    victim!.kill('SIGKILL');
    const report = await finished(c);
    expectExact(report);
    expect(report.cluster.redelivered).toBeGreaterThan(0);
  });

  it('(b) the coordinator SIGKILLed halfway and restarted with the same job resumes from its checkpoint', async () => {
    const { job, prefix } = names();
    await workers(2, { NEUROCORR_WORKER_FAULT: 'slow:30' });
    const first = coordinator(job, prefix);
    await waitFor('half the tiles', async () => (await doneTiles(job, prefix)) >= TILES / 2);
    first.kill('SIGKILL');
    await first.exited;
    const before = await doneTiles(job, prefix);
    const second = coordinator(job, prefix);
    const report = await finished(second);
    expectExact(report);
    expect(second.stderr()).toMatch(/resuming from checkpoint/);
    expect(before).toBeGreaterThanOrEqual(TILES / 2);
  });

  it('(c) nats-server restarted mid-run with its JetStream store kept', async () => {
    const { job, prefix } = names();
    await workers(2, { NEUROCORR_WORKER_FAULT: 'slow:30' });
    const c = coordinator(job, prefix);
    await waitFor('a third of the tiles', async () => (await doneTiles(job, prefix)) >= TILES / 3);
    await cluster.nats.restart();
    expectExact(await finished(c));
  });

  it('(d) redis-server restarted mid-run (its data lost)', async () => {
    const { job, prefix } = names();
    await workers(2, { NEUROCORR_WORKER_FAULT: 'slow:30' });
    const c = coordinator(job, prefix);
    await waitFor('a third of the tiles', async () => (await doneTiles(job, prefix)) >= TILES / 3);
    await cluster.redisServer.restart();
    const report = await finished(c);
    expectExact(report);
    expect(await cluster.redis.hget(jobKeys(job, prefix).state, 'status')).toBe('done');
  });

  it('(e) a worker that returns every result twice: duplicates are counted and harmless', async () => {
    const { job, prefix } = names();
    await workers(1, { NEUROCORR_WORKER_FAULT: 'duplicate' });
    const report = await finished(coordinator(job, prefix));
    expectExact(report);
    // The run ends at the last tile's first copy, so the second copies of the (at most 2) tiles then in flight may go unread.
    expect(report.cluster.duplicates).toBeGreaterThanOrEqual(TILES + report.null!.tiles - 2);
  });

  it('tiles that vanish from the work queue are published again, never waited on forever', async () => {
    const { job, prefix } = names();
    const c = coordinator(job, prefix);
    const nc = await connect({ servers: cluster.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const queued = async () =>
        (await jsm.streams.info('NEUROCORR_TILES', { subjects_filter: `neurocorr.tiles.${job}` })).state.subjects?.[`neurocorr.tiles.${job}`] ?? 0;
      await waitFor('the tiles to be published', async () => (await queued()) > 0);
      // As if JetStream lost every queued message of the job (no worker has seen one yet).
      await jsm.streams.purge('NEUROCORR_TILES', { filter: `neurocorr.tiles.${job}` });
    } finally {
      await nc.close();
    }
    await workers(2);
    const report = await finished(c);
    expectExact(report);
    expect(report.cluster.republished).toBeGreaterThan(0);
    expect(c.stderr()).toMatch(/tiles went missing from the work queue; published them again/);
  });

  it('--upload: workers read both sets from the NATS object store into their cache folder', async () => {
    const { job, prefix } = names();
    const cacheDir = mkdtempSync(join(tmpdir(), 'nc-worker-cache-'));
    await workers(2, {}, ['--cache-dir', cacheDir]);
    expectExact(await finished(coordinator(job, prefix, ['--upload'])));
    const sets = readdirSync(cacheDir);
    expect(sets).toHaveLength(2);
    for (const set of sets) expect(readdirSync(join(cacheDir, set))).toHaveLength(1);
  });

  it('a shard set with a poisoned shard fails the job after max_deliver, naming the tile and the shard', async () => {
    const { job, prefix } = names();
    const dir = mkdtempSync(join(tmpdir(), 'nc-poison-'));
    const prep = spawnSync(process.execPath, [BIN, 'prepare', fDir, join(dir, 'F'), '--shard-neurons', '20'], { encoding: 'utf8' });
    expect(prep.status, prep.stderr).toBe(0);
    const shards = JSON.parse(readFileSync(join(dir, 'F', 'manifest.json'), 'utf8')) as { shards: { file: string }[] };
    await workers(2);
    // Shards cut the blocks, so the tile count differs.
    expectExact(await finished(coordinator(job, prefix, [], join(dir, 'F'))), embedded(join(dir, 'F')), null);

    const poisoned = shards.shards[3]!.file;
    const path = join(dir, 'F', poisoned);
    const bytes = readFileSync(path);
    bytes[bytes.length - 9] = bytes[bytes.length - 9]! ^ 0xff;
    writeFileSync(path, bytes);
    const again = names();
    const c = coordinator(again.job, again.prefix, ['--max-deliver', '2'], join(dir, 'F'));
    // Exit 4: the job failed (a tile failed on every delivery); the message names the tile and the worker's error, which names the shard.
    expect(await c.exited).toBe(4);
    expect(c.stderr()).toMatch(/tile \d+ \(F .*\) of job .* failed 2 times \(max_deliver\)/);
    expect(c.stderr()).toMatch(/run the job again with the same --job/);
    expect(c.stderr()).toContain(poisoned);
    expect(c.stdout()).toBe('');
    expect(await cluster.redis.hget(jobKeys(again.job, again.prefix).state, 'status')).toBe('failed');
  });

  it('workers serve Prometheus metrics on loopback, and drain on SIGTERM', async () => {
    const { job, prefix } = names();
    const [w] = await workers(1, {}, ['--metrics-port', '0']);
    const url = /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(w!.stderr())?.[1];
    expect(url).toBeDefined();
    await finished(coordinator(job, prefix));
    const body = await (await fetch(url!)).text();
    expect(Number(/neurocorr_worker_tiles_done_total (\d+)/.exec(body)?.[1])).toBeGreaterThanOrEqual(TILES);
    expect(body).toMatch(/neurocorr_worker_pairs_total \d+/);
    w!.kill('SIGTERM');
    expect(await w!.exited).toBe(0);
    expect(w!.stderr()).toMatch(/"worker stopped"/);
  });

  it('bad cluster usage exits 2 with a clear message; an unreachable service exits 3', async () => {
    const noRedis = spawnCli(['score', fDir, gDir, '--nats', cluster.nats.url]);
    expect(await noRedis.exited).toBe(2);
    expect(noRedis.stderr()).toMatch(/needs both --nats and --redis/);
    const badJob = spawnCli(['score', fDir, gDir, '--nats', cluster.nats.url, '--redis', cluster.redisServer.url, '--job', 'no spaces']);
    expect(await badJob.exited).toBe(2);
    expect(badJob.stderr()).toMatch(/not a valid job name/);
    const down = spawnCli(['score', fDir, gDir, '--nats', 'nats://user:secret@127.0.0.1:1', '--redis', cluster.redisServer.url, '--service-timeout', '1']);
    expect(await down.exited).toBe(3);
    expect(down.stderr()).toMatch(/cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:1/);
    expect(down.stderr()).toMatch(/or fix --nats/);
    expect(down.stderr()).not.toContain('secret');
  });
});
