/**
 * Super-tiles in cluster mode against real servers: a coordinator and
 * workers as OS processes, main tiles of several kernel tiles a side
 * (across layers) that each worker splits across its pool, folds into one
 * result and sends in parts within max_payload. Every run must give the
 * embedded run's score bit for bit, a killed worker included.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobKeys } from '../dist/shared/cluster/index.js';
import { coordinatorArgs, jobNames, ready, spawnCli, startWorker, waitFor, useClusterServers, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { startNats } from './helpers/servers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const latent = latents(81, 24, 3);
// Ties (duplicates), constant neurons, a conv-shaped layer and one-neuron layers.
const F = genModel(82, { m: 24, layers: [[100], [4, 5, 5], [1], [60]], latent, constants: 0.05, duplicates: 0.1 });
const G = genModel(83, { m: 24, layers: [[120], [80], [1]], latent, duplicates: 0.1, constants: 0.05 });
const fDir = writeNpyDir(F);
const gDir = writeNpyDir(G);
const TILE = 16;
const NULL = ['--null', '2', '--null-sample', '40'];

interface Report {
  scores: unknown;
  layers: unknown;
  constant: unknown;
  null: { scores: unknown } | null;
  cluster: { workers: string[]; redelivered: number; duplicates: number };
}

const cluster = useClusterServers();
let reference: Report;

beforeAll(async () => {
  const r = spawnSync(process.execPath, [BIN, 'score', fDir, gDir, '--json', '--no-progress', ...NULL], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  reference = JSON.parse(r.stdout) as Report;
});

const names = jobNames('super');

function coordinator(superTile: number, extra: string[] = [], natsUrl = cluster.nats.url): { c: CliProcess; job: string; prefix: string } {
  const { job, prefix } = names();
  const servers = { nats: natsUrl, redis: cluster.redisServer.url };
  const extras = ['--super-tile', String(superTile), ...NULL, ...extra];
  const c = spawnCli(coordinatorArgs({ f: fDir, g: gDir, ...servers, job, prefix, tile: TILE, checkpointTiles: 4, checkpointSeconds: 0.3, extra: extras }));
  return { c, job, prefix };
}

async function finished(c: CliProcess): Promise<Report> {
  const code = await c.exited;
  expect(code, c.stderr()).toBe(0);
  return JSON.parse(c.stdout()) as Report;
}

function expectExact(report: Report): void {
  expect(report.scores).toEqual(reference.scores);
  expect(report.layers).toEqual(reference.layers);
  expect(report.constant).toEqual(reference.constant);
  expect(report.null?.scores).toEqual(reference.null?.scores);
}

async function workers(n: number, env: Record<string, string> = {}, natsUrl = cluster.nats.url): Promise<CliProcess[]> {
  const list = Array.from({ length: n }, () => startWorker(natsUrl, env, ['--threads', '2']));
  await Promise.all(list.map((w) => ready(w)));
  return list;
}

describe('cluster runs with super-tiles', () => {
  for (const [superTile, n] of [
    [32, 1],
    [80, 2],
    [40_000, 1],
    [40_000, 2],
  ] as const) {
    it(`super-tiles of ${superTile} neurons (${Math.floor(superTile / TILE)} blocks a side, across layers), ${n} worker(s): the embedded score bit for bit`, async () => {
      await workers(n);
      const { c } = coordinator(superTile);
      const report = await finished(c);
      expectExact(report);
      expect(report.cluster.workers).toHaveLength(n);
      expect(c.stderr()).toContain(`"span":${Math.floor(superTile / TILE)}`);
    });
  }

  it('a worker SIGKILLed in the middle of a super-tile: it is redelivered and the score is exact', async () => {
    // The victim holds each super-tile 2 s before computing it, so the kill always lands mid-tile.
    const [[victim]] = await Promise.all([workers(1, { NEUROCORR_WORKER_FAULT: 'slow:2000' }), workers(1, { NEUROCORR_WORKER_FAULT: 'slow:60' })]);
    const { c, job, prefix } = coordinator(48);
    await waitFor('the first checkpoint', async () => Number((await cluster.redis.hget(jobKeys(job, prefix).state, 'done')) ?? 0) >= 4);
    victim!.kill('SIGKILL');
    const report = await finished(c);
    expectExact(report);
    expect(report.cluster.redelivered).toBeGreaterThan(0);
  });

  it('a NATS server with a small max_payload: super-tile results travel in several parts, some delivered twice, and the score is exact', async () => {
    // 8 KB: about 160 entries a part, and the F + G ranges of a whole-model super-tile are 462 entries.
    const small = await startNats({ config: ['max_payload: 8KB'] });
    await workers(1, { NEUROCORR_WORKER_FAULT: 'duplicate' }, small.url);
    const { c } = coordinator(40_000, [], small.url);
    const report = await finished(c);
    expectExact(report);
    expect(c.stderr()).toMatch(/"partEntries":1\d\d\b/);
    expect(report.cluster.duplicates).toBeGreaterThan(0);
  });
});
