/**
 * Cluster faults that used to hang or crash (issue 11, findings 5 and 6),
 * against real servers: JetStream losing its state mid-job, Redis losing the
 * job, Redis unreachable, corrupted state in Redis. Every run that finishes
 * must give the embedded run's score bit for bit; every one that cannot
 * finish must end with a clear error, never hang.
 */
import { spawnSync } from 'node:child_process';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobKeys } from '../dist/shared/cluster/index.js';
import { coordinatorArgs, jobNames, ready, spawnCli, startWorker, waitFor, useClusterServers, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const latent = latents(81, 24, 3);
const fDir = writeNpyDir(genModel(82, { m: 24, layers: [[100], [60]], latent, constants: 0.05 }));
const gDir = writeNpyDir(genModel(83, { m: 24, layers: [[120], [40]], latent }));
const NULL = ['--null', '2', '--null-sample', '30'];

interface Report {
  scores: unknown;
  null: { scores: unknown } | null;
  cluster: { republished: number };
}

const cluster = useClusterServers();
let reference: Report;

beforeAll(async () => {
  const r = spawnSync(process.execPath, [BIN, 'score', fDir, gDir, '--json', '--no-progress', ...NULL], { encoding: 'utf8' });
  reference = JSON.parse(r.stdout) as Report;
});

const names = jobNames('faults');

function coordinator(job: string, prefix: string, extra: string[] = []): CliProcess {
  const servers = { nats: cluster.nats.url, redis: cluster.redisServer.url };
  return spawnCli(
    coordinatorArgs({ f: fDir, g: gDir, ...servers, job, prefix, tile: 16, checkpointTiles: 4, checkpointSeconds: 0.2, extra: [...NULL, ...extra] }),
  );
}

async function exact(c: CliProcess): Promise<Report> {
  expect(await c.exited, c.stderr()).toBe(0);
  const report = JSON.parse(c.stdout()) as Report;
  expect(report.scores).toEqual(reference.scores);
  expect(report.null?.scores).toEqual(reference.null?.scores);
  return report;
}

const done = async (job: string, prefix: string) => Number((await cluster.redis.hget(jobKeys(job, prefix).state, 'done')) ?? 0);

async function slowWorkers(n: number, ms = 40): Promise<CliProcess[]> {
  const list = Array.from({ length: n }, () => startWorker(cluster.nats.url, { NEUROCORR_WORKER_FAULT: `slow:${ms}` }));
  await Promise.all(list.map((w) => ready(w)));
  return list;
}

describe('JetStream is a transport: its state lost mid-job is re-created from the plan (finding 5)', () => {
  it('streams, consumers and the job bucket deleted mid-job: the job finishes, exact', async () => {
    const { job, prefix } = names();
    await slowWorkers(2);
    const c = coordinator(job, prefix);
    await waitFor('a few tiles', async () => (await done(job, prefix)) >= 10);
    const nc = await connect({ servers: cluster.nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('NEUROCORR_TILES');
    await jsm.streams.delete('NEUROCORR_RESULTS');
    await new Kvm(nc).create('neurocorr-jobs').then((kv) => kv.destroy());
    await nc.close();
    const report = await exact(c);
    expect(report.cluster.republished).toBeGreaterThan(0);
  });

  it('nats-server killed and started again with an empty store mid-job: the job finishes, exact', async () => {
    const { job, prefix } = names();
    await slowWorkers(2);
    const c = coordinator(job, prefix);
    await waitFor('a few tiles', async () => (await done(job, prefix)) >= 10);
    await cluster.nats.restart({ kill: true, wipeStore: true });
    const report = await exact(c);
    expect(report.cluster.republished).toBeGreaterThan(0);
  });
});

describe('Redis (finding 6)', () => {
  it('FLUSHALL mid-job: the next checkpoint writes the job back, and it finishes, exact', async () => {
    const { job, prefix } = names();
    await slowWorkers(2);
    const c = coordinator(job, prefix);
    await waitFor('a few tiles', async () => (await done(job, prefix)) >= 10);
    await cluster.redis.flushall();
    await exact(c);
  });

  it('unreachable at the start: exit 3 within the service timeout, with the address and the fix (no hang)', async () => {
    const started = Date.now();
    const { job, prefix } = names();
    const c = spawnCli([
      'score',
      fDir,
      gDir,
      '--nats',
      cluster.nats.url,
      '--redis',
      'redis://127.0.0.1:1',
      '--job',
      job,
      '--prefix',
      prefix,
      '--service-timeout',
      '2',
    ]);
    expect(await c.exited).toBe(3);
    expect(c.stderr()).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1 within 2 s.*start redis-server, or fix --redis/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('gone mid-job for longer than the service timeout: exit 3, no hang; the job resumes once it is back', async () => {
    const { job, prefix } = names();
    await slowWorkers(1, 150);
    const c = coordinator(job, prefix, ['--service-timeout', '2']);
    await waitFor('a few tiles', async () => (await done(job, prefix)) >= 6);
    cluster.redisServer.signal('SIGSTOP');
    try {
      expect(await c.exited).toBe(3);
      expect(c.stderr()).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+/);
    } finally {
      cluster.redisServer.signal('SIGCONT');
    }
    await exact(coordinator(job, prefix));
  });

  it.each([
    ['checkpoint', 'garbage'],
    ['spec', '{not json'],
    ['report', '{"version": 99}'],
  ] as const)('a corrupted %s key: exit 2 naming the key and the command that clears it', async (key, value) => {
    const { job, prefix } = names();
    await slowWorkers(2, 0);
    await exact(coordinator(job, prefix, key === 'report' ? [] : ['--checkpoint-tiles', '1']));
    const keys = jobKeys(job, prefix);
    // The finished job's report is replaced, or (for the others) the job is made to look unfinished.
    if (key !== 'report') await cluster.redis.del(keys.report);
    await cluster.redis.set(keys[key], value);
    const again = coordinator(job, prefix);
    expect(await again.exited).toBe(2);
    expect(again.stderr()).toContain(`Redis key ${keys[key]}`);
    expect(again.stderr()).toContain(`neurocorr jobs --delete ${job}`);
    const del = spawnCli(['jobs', '--redis', cluster.redisServer.url, '--prefix', prefix, '--delete', job]);
    expect(await del.exited).toBe(0);
    await exact(coordinator(job, prefix));
  });
});
