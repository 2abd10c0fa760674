/**
 * The one job driver: its timings mean the same on the local pool and on a
 * cluster (docs/CLI.md, Report timings), and an option a cluster run cannot honour
 * is refused (exit 2, naming it) rather than dropped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { score, zoo, UsageError, type Report, type ScoreOptions } from 'neurocorr';
import { isStoredResult } from '../dist/coordinator/cluster/stored.js';
import { JobClock } from '../dist/coordinator/job-timing.js';
import { planJob, type JobTile, type TileOutcome } from '../dist/shared/job/index.js';
import { coordinatorArgs, jobNames, ready, spawnCli, startWorker, useClusterServers } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const latent = latents(91, 24, 3);
const fDir = writeNpyDir(genModel(92, { m: 24, layers: [[60], [40]], latent }));
const gDir = writeNpyDir(genModel(93, { m: 24, layers: [[50]], latent }));
// Nowhere to connect: a refusal must come before any connection is tried.
const NOWHERE = { nats: 'nats://127.0.0.1:1', redis: 'redis://127.0.0.1:1', serviceTimeout: 0.1 };

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** Checks what every report's timings promise, whichever executor ran it. */
function expectTimings(report: Report, nullRan: boolean): void {
  expect(report.seconds).toBeGreaterThan(0);
  if (!nullRan) {
    expect(report.null).toBeNull();
    return;
  }
  expect(report.null!.tiles).toBeGreaterThan(0);
  expect(report.null!.seconds).toBeGreaterThan(0);
  expect(report.null!.seconds).toBeLessThan(report.seconds);
}

describe('the job clock', () => {
  const model = { n: 8, m: 4, layers: [{ name: 'a', start: 0, count: 8 }] };
  const plan = planJob([model, model] as never, [{ f: 0, g: 1 }], { block: 4, nulls: [{ permutations: 0, sample: [], seed: 0 }] as never });
  const outcome = (seconds: number) => ({ kind: 'tile', result: null, constant: null, seconds }) as unknown as TileOutcome;

  it("null.seconds is the pair's wall seconds times its null tiles' share of the compute seconds", () => {
    const clock = new JobClock();
    const tiles: JobTile[] = [...plan.tiles, { ...plan.tiles[0]!, id: 99, kind: 'null' } as unknown as JobTile];
    clock.start({ ...plan, tiles });
    const [main, extra] = [tiles.slice(0, -1), tiles.at(-1)!];
    for (const t of main) expect(clock.merged(t, outcome(1), 'done')).toBe(false);
    // A part or a duplicate does not count; the last tile finishes the pair.
    expect(clock.merged(extra, outcome(50), 'part')).toBe(false);
    expect(clock.merged(extra, outcome(50), 'duplicate')).toBe(false);
    expect(clock.merged(extra, outcome(main.length), 'done')).toBe(true);
    const { seconds, nullSeconds } = clock.pair(0);
    expect(seconds).toBeGreaterThan(0);
    expect(nullSeconds).toBeCloseTo(seconds / 2, 12);
    // Fixed once the pair is done.
    expect(clock.pair(0)).toEqual({ seconds, nullSeconds });
  });

  it('a done tile reopened by an audit holds its pair open until it is merged again', () => {
    const clock = new JobClock();
    clock.start(plan);
    const [first, ...rest] = plan.tiles;
    clock.merged(first!, outcome(1), 'done');
    clock.reopen(plan, [first!.id]);
    for (const t of rest) expect(clock.merged(t, outcome(1), 'done')).toBe(false);
    expect(clock.merged(first!, outcome(1), 'done')).toBe(true);
  });

  it('a pair without null tiles, or one resumed with every tile done, states 0 null seconds', () => {
    const clock = new JobClock();
    clock.start(plan, new Uint8Array(plan.tiles.length).fill(1));
    expect(clock.pair(0).nullSeconds).toBe(0);
    const fresh = new JobClock();
    fresh.start(plan);
    for (const t of plan.tiles) fresh.merged(t, outcome(1), 'done');
    expect(fresh.pair(0).nullSeconds).toBe(0);
  });
});

describe('report timings on the local pool', () => {
  it('score: null.seconds > 0 when a null ran, and the null is absent when none did', async () => {
    const base: ScoreOptions = { f: fDir, g: gDir, threads: 2, tile: 16 };
    expectTimings((await score({ ...base, null: { permutations: 3 } })).report, true);
    expectTimings((await score({ ...base, null: { permutations: 0 } })).report, false);
  });

  it("a finished cluster job's stored result reads back as its pairs' reports, or as the one report a score job stored before", async () => {
    const { report } = await score({ f: fDir, g: gDir, threads: 1, null: { permutations: 0 } });
    const json = JSON.parse(JSON.stringify(report)) as unknown;
    expect(isStoredResult(json)).toBe(true);
    expect(isStoredResult([json, json])).toBe(true);
    expect(isStoredResult([json, { scores: 1 }])).toBe(false);
  });

  it("zoo: every computed pair states its null's seconds (no longer a hard-coded 0)", async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nc-driver-')), 'zoo');
    const models = [
      { name: 'f', path: fDir },
      { name: 'g', path: gDir },
    ];
    const { result } = await zoo({ models, out, threads: 2, tile: 16, null: { permutations: 2 } });
    expect(result.pairs).toHaveLength(4);
    for (const pair of result.pairs) expectTimings(pair.report, true);
  });
});

describe('options a cluster run cannot honour', () => {
  it.each([
    ['threads', { threads: 2 }],
    ['kernel', { kernel: 'reference' }],
    ['kernel', { kernel: { choice: 'auto', isa: 'scalar' } }],
  ] as const)('score refuses %s with a UsageError naming it, before connecting', async (name, extra) => {
    const err: unknown = await score({ f: fDir, g: gDir, cluster: NOWHERE, ...extra } as ScoreOptions).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(new RegExp(`^${name} applies to this machine's pool`));
  });

  it('zoo refuses them too, before its folder is made', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nc-driver-')), 'zoo');
    const models = [
      { name: 'f', path: fDir },
      { name: 'g', path: gDir },
    ];
    const err: unknown = await zoo({ models, out, threads: 1, cluster: NOWHERE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/^threads applies/);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ['--threads', ['--threads', '2']],
    ['--kernel', ['--kernel', 'native']],
  ])('the CLI exits 2 naming %s', (flag, extra) => {
    const r = cli(['score', fDir, gDir, '--nats', NOWHERE.nats, '--redis', NOWHERE.redis, '--service-timeout', '0.1', '--no-progress', ...extra]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${flag} applies to this machine's pool`);
    expect(r.stderr).toContain(`neurocorr worker ${flag}`);
  });
});

describe('on a cluster', () => {
  const cluster = useClusterServers();
  const names = jobNames('driver');
  /** A cluster `score` of F (or `f`) against G, under a job name of its own. */
  const coordinator = (extra: string[], env: Record<string, string> = {}, f = fDir) => {
    const servers = { nats: cluster.nats.url, redis: cluster.redisServer.url };
    return spawnCli([...coordinatorArgs({ ...names(), ...servers, f, g: gDir, tile: 16, checkpointTiles: 8, checkpointSeconds: 1 }), ...extra], env);
  };

  it('null.seconds means what it means embedded, the scores and null are the embedded ones, and trace is honoured', async () => {
    const workers = [startWorker(cluster.nats.url), startWorker(cluster.nats.url)];
    await Promise.all(workers.map((w) => ready(w)));
    const c = coordinator(['--null', '3'], { NEUROCORR_TRACE: '1' });
    expect(await c.exited, c.stderr()).toBe(0);
    const report = JSON.parse(c.stdout()) as Report;
    expectTimings(report, true);
    expect(c.stderr()).toMatch(/trace: planned at \d+ ms/);
    expect(c.stderr()).toMatch(/trace: tiles done at \d+ ms/);
    // The same pair embedded: the same scores and null, timed the same way.
    const embedded = await score({ f: fDir, g: gDir, tile: 16, null: { permutations: 3 }, nativeStandardize: false });
    expect(report.scores).toEqual(embedded.report.scores);
    expect(report.null!.scores).toEqual(embedded.report.null!.scores);
    expectTimings(embedded.report, true);

    // Without a null: none in the report.
    const none = coordinator(['--null', '0']);
    expect(await none.exited, none.stderr()).toBe(0);
    expectTimings(JSON.parse(none.stdout()) as Report, false);
  });

  it('memory bounds the coordinator reading shard sets to check results: too little is exit 2 naming it, as embedded', async () => {
    const shards = join(mkdtempSync(join(tmpdir(), 'nc-driver-')), 'f.shards');
    const prep = cli(['prepare', fDir, shards, '--shard-neurons', '20']);
    expect(prep.status, prep.stderr).toBe(0);
    const tooLittle = ['--memory', '1KiB', '--null', '0'];
    const embedded = cli(['score', shards, gDir, '--no-progress', ...tooLittle]);
    expect(embedded.status, embedded.stderr).toBe(2);
    expect(embedded.stderr).toMatch(/--memory 1024 bytes \(1KiB\) is below/);
    const c = coordinator(tooLittle, {}, shards);
    expect(await c.exited, c.stderr()).toBe(2);
    expect(c.stderr()).toMatch(/--memory 1024 bytes \(1KiB\) is below/);
  });

  it('the library call takes trace and nativeStandardize on a cluster, and its report is the embedded one', async () => {
    const workers = [startWorker(cluster.nats.url)];
    await Promise.all(workers.map((w) => ready(w)));
    const { job, prefix } = names();
    const lines: string[] = [];
    const options: ScoreOptions = { f: fDir, g: gDir, tile: 16, null: { permutations: 2 }, nativeStandardize: false };
    const run = await score({
      ...options,
      trace: true,
      log: (line) => lines.push(line),
      cluster: { nats: cluster.nats.url, redis: cluster.redisServer.url, job, prefix },
    });
    expect(lines.some((line) => line.startsWith('trace: tiles done'))).toBe(true);
    const embedded = await score(options);
    expect(run.report.scores).toEqual(embedded.report.scores);
    expect(run.report.null!.scores).toEqual(embedded.report.null!.scores);
    expectTimings(run.report, true);
  });
});
