/**
 * Cluster faults that used to hang or crash (issue 11, findings 5 and 6;
 * issue 23), against real servers and fake ones: JetStream losing its state
 * mid-job, Redis losing the job, Redis unreachable, silent or answering
 * garbage, NATS that stops answering, corrupted state in Redis. Every run
 * that finishes must give the embedded run's score bit for bit; every one
 * that cannot finish must end with a clear error, never hang.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobKeys, jobsIndexKey } from '../dist/shared/cluster/index.js';
import { coordinatorArgs, jobNames, ready, spawnCli, startWorker, waitFor, useClusterServers, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { startFakeRedis, startNats, startSilentServer, type FakeServer } from './helpers/servers.js';
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
    const paused = Date.now();
    try {
      expect(await c.exited).toBe(3);
      expect(Date.now() - paused).toBeLessThan(2000 + 3000);
      expect(c.stderr()).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+/);
    } finally {
      cluster.redisServer.signal('SIGCONT');
    }
    await exact(coordinator(job, prefix));
  });

  it.each([
    ['checkpoint', 'garbage'],
    ['spec', '{not json'],
    ['spec', '{"version": 4}'],
    ['report', '{"version": 99}'],
    ['report', '{"version": 1}'],
  ] as const)('a corrupted %s key: exit 7 naming the key and the command that clears it', async (key, value) => {
    const { job, prefix } = names();
    await slowWorkers(2, 0);
    await exact(coordinator(job, prefix, key === 'report' ? [] : ['--checkpoint-tiles', '1']));
    const keys = jobKeys(job, prefix);
    // The finished job's report is replaced, or (for the others) the job is made to look unfinished.
    if (key !== 'report') await cluster.redis.del(keys.report);
    await cluster.redis.set(keys[key], value);
    const again = coordinator(job, prefix);
    expect(await again.exited).toBe(7);
    expect(again.stderr()).toContain(`Redis key ${keys[key]}`);
    expect(again.stderr()).toContain(`neurocorr jobs --delete ${job}`);
    const del = spawnCli(['jobs', '--redis', cluster.redisServer.url, '--prefix', prefix, '--delete', job]);
    expect(await del.exited).toBe(0);
    await exact(coordinator(job, prefix));
  });
});

/** The process's exit code, or 'still running' after `ms`. */
function exitWithin(p: CliProcess, ms: number): Promise<number | string> {
  return Promise.race([p.exited, sleep(ms).then(() => 'still running')]);
}

async function withFake<T>(start: Promise<FakeServer>, use: (fake: FakeServer) => Promise<T>): Promise<T> {
  const fake = await start;
  try {
    return await use(fake);
  } finally {
    await fake.stop();
  }
}

describe('servers that answer wrongly (issue 23)', () => {
  it('a NATS port that accepts and never answers: score exits 3 at the service timeout, and the process ends', async () => {
    await withFake(startSilentServer(), async (silent) => {
      const { job, prefix } = names();
      const url = `nats://127.0.0.1:${silent.port}`;
      const c = spawnCli(['score', fDir, gDir, '--nats', url, '--redis', cluster.redisServer.url, '--job', job, '--prefix', prefix, '--service-timeout', '1']);
      expect(await exitWithin(c, 15_000), c.stderr()).toBe(3);
      expect(c.stderr()).toContain(`cannot reach NATS at ${url} within 1 s`);
    });
  });

  it.each([
    ['*99999999999\r\n', /does not answer as Redis does \(Invalid array length\)/],
    ['$-9\r\n', /does not answer as Redis does \(PING answered with null\)/],
    ['hello\r\n', /does not answer as Redis does \(Protocol error, got "h" as reply type byte\)/],
    ['*abc\r\n', /cannot reach Redis at .* within 1 s/],
  ])('a Redis port answering %j: exit 3 naming the server, redacted, never a crash', async (reply, problem) => {
    await withFake(startFakeRedis(reply), async (fake) => {
      const run = spawnCli(['jobs', '--redis', `redis://ops:s3cret-pw@127.0.0.1:${fake.port}`, '--service-timeout', '1']);
      expect(await exitWithin(run, 15_000), run.stderr()).toBe(3);
      expect(run.stderr()).toMatch(problem);
      expect(run.stderr()).toContain(`redis://***@127.0.0.1:${fake.port}`);
      expect(run.stderr()).not.toContain('s3cret-pw');
      expect(run.stderr()).not.toMatch(/internal error|RangeError|TypeError/);
    });
  });

  it('a Redis port answering garbage to a coordinator: exit 3, its NATS connection closed', async () => {
    await withFake(startFakeRedis('*99999999999\r\n'), async (fake) => {
      const { job, prefix } = names();
      const url = `redis://127.0.0.1:${fake.port}`;
      const c = spawnCli(['score', fDir, gDir, '--nats', cluster.nats.url, '--redis', url, '--job', job, '--prefix', prefix, '--service-timeout', '1']);
      expect(await exitWithin(c, 15_000), c.stderr()).toBe(3);
      expect(c.stderr()).toContain(`the server at ${url} does not answer as Redis does`);
    });
  });

  it.each(['a port that accepts and never answers', 'a paused redis-server'])('Redis at %s: exit 3 within the service timeout and 2 s', async (what) => {
    const silent = what.startsWith('a port') ? await startSilentServer() : null;
    const port = silent?.port ?? cluster.redisServer.port;
    if (silent === null) cluster.redisServer.signal('SIGSTOP');
    try {
      const started = Date.now();
      const run = spawnCli(['jobs', '--redis', `redis://127.0.0.1:${port}`, '--service-timeout', '3']);
      expect(await exitWithin(run, 30_000), run.stderr()).toBe(3);
      // The bound, and a second for node to start.
      expect(Date.now() - started).toBeLessThan(3000 + 2000 + 1000);
      expect(run.stderr()).toContain(`cannot reach Redis at redis://127.0.0.1:${port} within 3 s`);
    } finally {
      cluster.redisServer.signal('SIGCONT');
      await silent?.stop();
    }
  });

  it('a worker holding a tile when NATS stops answering drains on SIGTERM at once; the tile goes to another worker, and the job ends exact', async () => {
    const own = await startNats();
    try {
      const { job, prefix } = names();
      const slow = startWorker(own.url, { NEUROCORR_WORKER_FAULT: 'slow:2000' }, ['--inflight', '1']);
      await ready(slow);
      const c = spawnCli(
        coordinatorArgs({
          f: fDir,
          g: gDir,
          nats: own.url,
          redis: cluster.redisServer.url,
          job,
          prefix,
          tile: 16,
          checkpointTiles: 1,
          checkpointSeconds: 0.2,
          extra: NULL,
        }),
      );
      // Each tile waits 2 s before it computes: after the first, the worker holds the next one.
      await waitFor('a tile', async () => (await done(job, prefix)) >= 1);
      own.signal('SIGSTOP');
      await sleep(300);
      const signalled = Date.now();
      slow.kill('SIGTERM');
      expect(await exitWithin(slow, 30_000), slow.stderr()).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(8_000);
      own.signal('SIGCONT');
      await ready(startWorker(own.url));
      await exact(c);
    } finally {
      own.signal('SIGCONT');
      await own.stop();
    }
  });

  it('a job whose state key has the wrong type is listed as damaged, naming the key and how to clear it; its coordinator exits 7', async () => {
    const { job, prefix } = names();
    const keys = jobKeys(job, prefix);
    await cluster.redis.zadd(jobsIndexKey(prefix), Date.now(), job);
    await cluster.redis.set(keys.state, 'not a hash');
    const jobs = (...extra: string[]) => spawnCli(['jobs', '--redis', cluster.redisServer.url, '--prefix', prefix, ...extra]);
    const listed = jobs('--json');
    expect(await listed.exited, listed.stderr()).toBe(0);
    const clear = `neurocorr jobs --delete ${job} --prefix ${prefix}`;
    expect(JSON.parse(listed.stdout())).toEqual([
      expect.objectContaining({
        job,
        status: 'damaged',
        error: `Redis key ${keys.state} is a Redis string, not the job's state (a hash); clear the job with \`${clear}\``,
      }),
    ]);
    const table = jobs();
    expect(await table.exited).toBe(0);
    expect(table.stdout()).toMatch(new RegExp(`${job}\\s+damaged`));
    const again = coordinator(job, prefix);
    expect(await again.exited).toBe(7);
    expect(again.stderr()).toContain(`Redis key ${keys.state}`);
    expect(again.stderr()).toContain(`neurocorr jobs --delete ${job}`);
    const del = jobs('--delete', job);
    expect(await del.exited).toBe(0);
    const after = jobs();
    expect(await after.exited).toBe(0);
    expect(after.stdout()).toBe(`no jobs under ${prefix}:\n`);
  });
});
