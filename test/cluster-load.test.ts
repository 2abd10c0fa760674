/**
 * A shared cluster: many jobs at once on the same workers (scores and zoos,
 * .npy and shard sets, each from its own coordinator), each bit-identical to
 * its embedded run; a small job is not starved by a large one; a wedged lane
 * lets its tile go; a job with no progress ends; a worker's cache holds
 * several jobs within its bound, or refuses one that cannot fit. Real
 * nats-server and redis-server on loopback (issue 22).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sweepLeftovers } from '../dist/coordinator/cluster/job-transport.js';
import { jobKeys, TILE_STREAM, tileConsumer, tileSubject } from '../dist/shared/cluster/index.js';
import { ensureStreams } from '../dist/shared/nats/index.js';
import { createLogger } from '../dist/shared/observe.js';
import { jobNames, ready, spawnCli, startWorker, useClusterServers, waitFor, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { freePort } from './helpers/servers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const root = mkdtempSync(join(tmpdir(), 'nc-load-'));
const latent = latents(2201, 24, 3);
const F = writeNpyDir(genModel(2202, { m: 24, layers: [[90], [3, 4, 4]], latent, constants: 0.05, duplicates: 0.1 }), join(root, 'F'));
const G = writeNpyDir(genModel(2203, { m: 24, layers: [[70], [1], [40]], latent, duplicates: 0.1 }), join(root, 'G'));
const H = writeNpyDir(genModel(2204, { m: 24, layers: [[60]], latent }), join(root, 'H'));
const NULL = ['--null', '2', '--null-sample', '30'];

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

// Shard sets of the same models, with small shards so that tiles fall on several.
cli(['prepare', F, join(root, 'F.shards'), '--shard-neurons', '40']);
cli(['prepare', G, join(root, 'G.shards'), '--shard-neurons', '30']);
const zooFile = join(root, 'zoo.json');
writeFileSync(zooFile, JSON.stringify({ models: [F, G, H].map((path, k) => ({ name: `m${k}`, path })) }));

interface Report {
  scores: unknown;
  layers: unknown;
  null: { scores: unknown } | null;
  cluster: { job: string; workers: string[] };
}

/** The parts of a report that must be equal bit for bit between runs. */
const exact = (r: Report) => ({ scores: r.scores, layers: r.layers, null: r.null?.scores ?? null });

interface JobKind {
  readonly name: string;
  /** The command's arguments before the cluster flags. */
  readonly args: readonly string[];
  /** A zoo writes its matrix under `out` with its store beside it (the embedded reference gets its own); a score prints its report. */
  readonly out?: string;
}

/** A zoo's output and store flags: its own for each run, so that no run reuses another's pairs. */
const zooOutput = (out: string): string[] => ['--out', out, '--store', `${out}.sqlite`];

const cluster = useClusterServers();
const names = jobNames('load');

function start(kind: JobKind, extra: readonly string[] = []): { proc: CliProcess; job: string } {
  const { job, prefix } = names();
  const flags = [
    '--nats',
    cluster.nats.url,
    '--redis',
    cluster.redisServer.url,
    '--job',
    job,
    '--prefix',
    prefix,
    '--no-progress',
    '--ack-wait',
    '2',
    ...extra,
  ];
  return { proc: spawnCli([...kind.args, ...flags, ...(kind.out === undefined ? ['--json'] : zooOutput(kind.out))]), job };
}

/** The embedded result of a job kind: a score's report, or a zoo's matrix.csv. */
function embedded(kind: JobKind): string {
  if (kind.out === undefined) return JSON.stringify(exact(JSON.parse(cli([...kind.args, '--json', '--no-progress'])) as Report));
  const out = `${kind.out}-embedded`;
  cli([...kind.args, ...zooOutput(out), '--no-progress']);
  return readFileSync(join(out, 'matrix.csv'), 'utf8');
}

async function result(kind: JobKind, proc: CliProcess): Promise<string> {
  expect(await proc.exited, proc.stderr()).toBe(0);
  if (kind.out === undefined) return JSON.stringify(exact(JSON.parse(proc.stdout()) as Report));
  return readFileSync(join(kind.out, 'matrix.csv'), 'utf8');
}

async function workers(n: number, env: Record<string, string> = {}, extra: string[] = []): Promise<CliProcess[]> {
  const list = Array.from({ length: n }, () => startWorker(cluster.nats.url, env, extra));
  await Promise.all(list.map((w) => ready(w)));
  return list;
}

const score = (name: string, f: string, g: string, extra: string[] = []): JobKind => ({ name, args: ['score', f, g, '--tile', '16', ...NULL, ...extra] });
const zoo = (name: string): JobKind => {
  const out = join(mkdtempSync(join(tmpdir(), 'nc-load-zoo-')), 'zoo');
  return { name, args: ['zoo', zooFile, '--tile', '16', ...NULL], out };
};

describe('many jobs on one cluster', () => {
  it('two jobs started together on two workers both finish, each bit-identical to its embedded run', async () => {
    await workers(2);
    const kinds = [score('a', F, G), score('b', F, G, ['--null', '0'])];
    const references = kinds.map(embedded);
    const running = kinds.map((k) => start(k));
    for (const [i, { proc }] of running.entries()) expect(await result(kinds[i]!, proc)).toBe(references[i]);
  });

  it("tiles left in the queue by a job that has ended (no consumer) are purged when a job starts; a live job's tiles are not", async () => {
    const nc = await connect({ servers: cluster.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      await ensureStreams(jsm);
      const { job: ended } = names();
      const { job: live } = names();
      await jsm.consumers.add(TILE_STREAM, { durable_name: tileConsumer(live), filter_subject: tileSubject(live), ack_policy: AckPolicy.Explicit });
      for (const job of [ended, ended, live]) await js.publish(tileSubject(job), new Uint8Array(8));
      const count = async (job: string) => (await jsm.streams.info(TILE_STREAM, { subjects_filter: tileSubject(job) })).state.subjects?.[tileSubject(job)] ?? 0;
      expect([await count(ended), await count(live)]).toEqual([2, 1]);
      // No worker runs: only the sweep touches the queue.
      await sweepLeftovers(jsm, createLogger('test', 'silent'));
      expect([await count(ended), await count(live)]).toEqual([0, 1]);
      await jsm.consumers.delete(TILE_STREAM, tileConsumer(live));

      // A job's start sweeps: the live job's consumer is gone, so its tile is a leftover now.
      await workers(1);
      const kind = score('next', F, G, ['--null', '0']);
      const { proc } = start(kind);
      expect(await result(kind, proc)).toBe(embedded(kind));
      expect(await count(live)).toBe(0);
      expect(proc.stderr()).toContain('purged tiles left in the queue by a job that has ended');
    } finally {
      await nc.close();
    }
  });

  it('six jobs at once (scores and a zoo, .npy and shard sets, six coordinators) on two workers: every one finishes exact', async () => {
    await workers(2);
    const kinds = [
      score('npy', F, G),
      score('reversed', G, F, ['--null', '0']),
      score('shards', join(root, 'F.shards'), join(root, 'G.shards')),
      score('mixed', join(root, 'F.shards'), G, ['--null', '0']),
      score('other tile', F, H, ['--tile', '24']),
      zoo('zoo'),
    ];
    const references = kinds.map(embedded);
    const running = kinds.map((k) => start(k));
    const results = await Promise.all(running.map(({ proc }, i) => result(kinds[i]!, proc)));
    results.forEach((r, i) => expect(r, kinds[i]!.name).toBe(references[i]));
    // Both workers served the jobs.
    for (const { proc } of running.filter((_, i) => kinds[i]!.out === undefined))
      expect((JSON.parse(proc.stdout()) as Report).cluster.workers.length).toBeGreaterThan(0);
  });

  it('a small job started while a large one has hundreds of tiles queued finishes first: workers take turns between jobs', async () => {
    // Each tile held 40 ms: the large job needs seconds on four lanes, the small one a fraction of that.
    await workers(2, { NEUROCORR_WORKER_FAULT: 'slow:40' });
    const large = score('large', F, G, ['--tile', '8', '--null', '0']);
    const small = score('small', H, H, ['--tile', '30', '--null', '0']);
    const references = [large, small].map(embedded);
    const big = start(large);
    await waitFor('the large job to publish its tiles', () => big.proc.stderr().includes('"tiles published"'));
    const started = performance.now();
    const little = start(small);
    const order: string[] = [];
    void big.proc.exited.then(() => order.push('large'));
    void little.proc.exited.then(() => order.push('small'));
    expect(await result(small, little.proc)).toBe(references[1]);
    const smallSeconds = (performance.now() - started) / 1000;
    expect(await result(large, big.proc)).toBe(references[0]);
    expect(order, `the small job took ${smallSeconds} s`).toEqual(['small', 'large']);
  });
});

describe('no tile held for ever, no job waits for ever', () => {
  it('a wedged lane lets its tile go: the job finishes exact on the other worker; a worker whose lanes are all wedged is not ready and not live', async () => {
    const port = await freePort();
    const [wedged] = await workers(1, { NEUROCORR_WORKER_FAULT: 'wedge:1' }, ['--inflight', '1', '--tile-timeout', '1', '--metrics-port', String(port)]);
    const kind = score('wedged', F, G, ['--null', '0']);
    const reference = embedded(kind);
    const { proc } = start(kind);
    await waitFor('the wedged worker to give its tile up', () => wedged!.stderr().includes('stops extending'), 30_000);
    await workers(1);
    expect(await result(kind, proc)).toBe(reference);
    for (const path of ['/readyz', '/healthz']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      expect(res.status, path).toBe(503);
      expect(await res.text()).toMatch(/every lane \(1\) gave its tile up/);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/neurocorr_worker_lanes_wedged 1/);
    // A drain does not wait for a lane that may never return.
    wedged!.kill('SIGTERM');
    expect(await wedged!.exited).toBe(0);
    expect(wedged!.stderr()).toContain('stopping with wedged lanes');
  });

  it('a job with no worker fails after --stall-timeout with exit 5, naming its state; a rerun with the same --job resumes and finishes exact', async () => {
    const kind = score('stalled', F, G, ['--null', '0']);
    const reference = embedded(kind);
    const { job, prefix } = names();
    const flags = ['--nats', cluster.nats.url, '--redis', cluster.redisServer.url, '--job', job, '--prefix', prefix, '--no-progress', '--json'];
    const first = spawnCli([...kind.args, ...flags, '--stall-timeout', '2']);
    expect(await first.exited, first.stderr()).toBe(5);
    expect(first.stderr()).toMatch(
      /made no progress for 2 s \(--stall-timeout: no tile finished, and no worker said it was working on one\): 0 of \d+ tiles done, \d+ queued, 0 held by workers/,
    );
    expect(first.stderr()).toMatch(/workers seen in this run: none/);
    expect(first.stderr()).toContain(`run it again with the same --job to resume`);
    expect(first.stdout()).toBe('');
    // Its state is kept in Redis, marked failed with the reason.
    expect(await cluster.redis.hget(jobKeys(job, prefix).state, 'status')).toBe('failed');
    await workers(2);
    const second = spawnCli([...kind.args, ...flags]);
    expect(await result(kind, second)).toBe(reference);
  });

  it('a tile that computes for longer than --stall-timeout is not a stall: its worker says it is working on it', async () => {
    // One lane, each tile held 3 s: no tile finishes within the 2 s stall timeout, yet the job is making progress.
    await workers(1, { NEUROCORR_WORKER_FAULT: 'slow:3000' }, ['--inflight', '1']);
    const kind = score('long tiles', H, H, ['--tile', '60', '--null', '0']);
    const reference = embedded(kind);
    const { proc } = start(kind, ['--stall-timeout', '2']);
    expect(await result(kind, proc)).toBe(reference);
  });

  it('--stall-timeout takes seconds or none, and refuses anything else naming the flag', () => {
    const r = spawnSync(process.execPath, [BIN, 'score', F, G, '--nats', cluster.nats.url, '--redis', cluster.redisServer.url, '--stall-timeout', 'soon'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--stall-timeout soon: expected seconds from 1 to 2592000, or none');
  });
});

describe("a worker's cache", () => {
  it('holds the jobs that fit its --cache and closes idle ones to make room: jobs that cannot share it still all finish exact', async () => {
    // Models held whole take 24 probes x 4 bytes a neuron: F 13.2 KB, G 10.7 KB, H 5.8 KB; 30 KB holds any one of these jobs, no two.
    const w = await workers(1, {}, ['--cache', '30000']);
    const kinds = [score('one', F, G, ['--null', '0']), score('two', G, H, ['--null', '0']), score('three', H, F, ['--null', '0'])];
    const references = kinds.map(embedded);
    const running = kinds.map((k) => start(k));
    for (const [i, { proc }] of running.entries()) expect(await result(kinds[i]!, proc)).toBe(references[i]);
    expect(w[0]!.stderr()).not.toMatch(/"level":50/);
    expect(w[0]!.stderr()).toMatch(/closed an idle job to make room in the cache|waiting for jobs in use to fall idle/);
  });

  it("a job that alone needs more than a worker's --cache fails naming the flag and the size that fits (exit 4)", async () => {
    await workers(1, {}, ['--cache', '4000']);
    const kind = score('too large', F, G, ['--null', '0']);
    const { proc } = start(kind, ['--max-deliver', '1']);
    expect(await proc.exited, proc.stderr()).toBe(4);
    expect(proc.stderr()).toContain(
      "needs at least 23904 bytes (23.3KiB) of this worker's cache (23904 bytes (23.3KiB) for the models held whole), but its --cache is 4000 bytes (3.9KiB): start the worker with --cache 24KiB or more",
    );
    expect(proc.stderr()).toContain("Fix: fix what that message names (an input, or a worker's settings)");
  });

  it('a worker started without --data-root says so in flags, not in library option names', async () => {
    const w = spawnCli(['worker', '--nats', cluster.nats.url, '--threads', '1', '--cache-dir', join(tmpdir(), 'neurocorr-test-cache')]);
    await ready(w);
    // Every tile fails on every delivery: redeliveries flow at the lanes' pace, so the job fails after its five in seconds.
    const started = performance.now();
    const { proc } = start(score('no roots', F, G, ['--null', '0']));
    expect(await proc.exited, proc.stderr()).toBe(4);
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(proc.stderr()).toMatch(/failed 5 times \(max_deliver\)/);
    expect(proc.stderr()).toContain('started without --data-root); start it with --data-root for the shared folder, or run the coordinator with --upload');
    expect(proc.stderr()).not.toContain('dataRoots');
  });
});
