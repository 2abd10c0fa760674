/** The cluster's wire formats and key names: round trips, sizes, and refusals. */
import { describe, expect, it } from 'vitest';
import { clusterBlock } from '../dist/coordinator/cluster/coordinator.js';
import {
  checkJobName,
  decodeResult,
  decodeTile,
  encodeFailure,
  encodeResult,
  encodeTile,
  jobKeys,
  jobsIndexKey,
  redactUrl,
  resultPayloadBytes,
} from '../dist/shared/cluster/index.js';
import type { LayerInfo, Model } from '../dist/shared/core/index.js';
import { allocTileResult } from '../dist/shared/tiles/index.js';
import { encodeCheckpoint, JobProgress, planJob, type JobTile } from '../dist/shared/job/index.js';
import { restoreCheckpoint } from '../dist/shared/job/index.js';

const tile: JobTile = { kind: 'main', id: 7, pair: 0, f: { layer: 1, start: 10, count: 3 }, g: { layer: 0, start: 4, count: 2 } };
const nullTile: JobTile = { kind: 'null', id: 9, pair: 0, k: 3, side: 1, sample: { layer: 0, start: 0, count: 4 }, other: { layer: 1, start: 12, count: 8 } };
const provenance = { worker: 'w-1', kernel: 'native-avx512', deliveries: 2, milliseconds: 1.5 };

describe('protocol codecs', () => {
  it('a tile spec round-trips, main and null', () => {
    expect(decodeTile(encodeTile('job-a', 'abc', tile))).toEqual({ job: 'job-a', spec: 'abc', avoid: '', tile });
    expect(decodeTile(encodeTile('job-a', 'abc', nullTile))).toEqual({ job: 'job-a', spec: 'abc', avoid: '', tile: nullTile });
    // An audit's copy names the worker that must not compute it.
    expect(decodeTile(encodeTile('job-a', 'abc', tile, 'worker-7')).avoid).toBe('worker-7');
  });

  it('a tile result round-trips bit for bit, as raw buffers, even from an unaligned view', () => {
    const result = allocTileResult(3, 2);
    result.rowBest.set([0.5, 1 / 3, Number.MIN_VALUE]);
    result.colBest.set([0.25, 1 - 2 ** -52]);
    result.rowArg.set([4, 5, 0xfffffffe]);
    result.colArg.set([10, 12]);
    const constant = Uint8Array.of(0, 1, 0, 0, 1);
    const bytes = encodeResult('job-a', tile.id, result, constant, provenance);
    // NATS hands out Buffers that are views into a larger pool, at odd offsets.
    const pooled = new Uint8Array(bytes.length + 3);
    pooled.set(bytes, 3);
    const decoded = decodeResult(pooled.subarray(3));
    expect(decoded.kind).toBe('result');
    if (decoded.kind !== 'result') return;
    expect(decoded).toMatchObject({ job: 'job-a', tile: tile.id, ...provenance });
    expect([...decoded.result.rowBest]).toEqual([...result.rowBest]);
    expect([...decoded.result.colBest]).toEqual([...result.colBest]);
    expect([...decoded.result.rowArg]).toEqual([...result.rowArg]);
    expect([...decoded.result.colArg]).toEqual([...result.colArg]);
    expect([...decoded.constant]).toEqual([...constant]);
    expect(bytes.length - resultPayloadBytes(3, 2)).toBeLessThan(80);
  });

  it('a null tile result carries no constant flags', () => {
    const decoded = decodeResult(encodeResult('job-a', nullTile.id, allocTileResult(8, 4), new Uint8Array(0), provenance));
    expect(decoded.kind === 'result' && decoded.constant.length).toBe(0);
    expect(() => encodeResult('job-a', 1, allocTileResult(8, 4), new Uint8Array(3), provenance)).toThrow(/3 constant flags for a result of 8x4/);
  });

  it('a failure carries its message', () => {
    const decoded = decodeResult(encodeFailure('job-a', tile.id, 'shard 3 is damaged', provenance));
    expect(decoded).toMatchObject({ kind: 'failure', tile: 7, error: 'shard 3 is damaged', worker: 'w-1', deliveries: 2 });
  });

  it('truncated or foreign messages are refused', () => {
    const bytes = encodeTile('job-a', 'abc', tile);
    expect(() => decodeTile(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    expect(() => decodeTile(Uint8Array.of(9, ...bytes.subarray(1)))).toThrow(/protocol version 9/);
    expect(() => decodeResult(bytes)).toThrow(/expected a result message/);
  });

  it('job names must be safe as subject tokens and key parts', () => {
    expect(checkJobName('nightly_zoo-2026')).toBe('nightly_zoo-2026');
    for (const bad of ['', 'a b', 'a.b', 'a*', 'x'.repeat(65)]) expect(() => checkJobName(bad)).toThrow(/not a valid job name/);
  });
});

describe('checkpoints', () => {
  const layers: LayerInfo[] = [{ name: 'l', depth: 0, source: 's', shape: [3], start: 0, count: 3, total: 3, constant: 0 }];
  const model = (n = 3): Model => ({
    path: 'm',
    probes: 4,
    m: 4,
    n,
    layers: [{ ...layers[0]!, count: n, total: n }],
    z: new Float32Array(0),
    constant: new Uint8Array(n),
    ids: null,
    fingerprint: null,
  });
  const progress = (n = 3) => new JobProgress(planJob([model(n), model()], [{ f: 0, g: 1 }], { block: 2, nulls: [{ permutations: 1, sample: 2, seed: 1 }] }));

  it('restores exactly what was saved, null included', () => {
    const a = progress();
    const main = a.plan.tiles.find((t) => t.kind === 'main')!;
    const r = allocTileResult(2, 2);
    r.rowBest.set([0.1, 0.2]);
    r.colBest.set([0.4, 0.5]);
    a.merge(main, r, Uint8Array.of(0, 1, 0, 0));
    const sampleTile = a.plan.tiles.find((t) => t.kind === 'null')!;
    const n = allocTileResult(sampleTile.kind === 'null' ? sampleTile.other.count : 0, sampleTile.kind === 'null' ? sampleTile.sample.count : 0);
    n.colBest.fill(0.75);
    a.merge(sampleTile, n, null);
    const b = progress();
    restoreCheckpoint(encodeCheckpoint(a), b);
    expect(encodeCheckpoint(b)).toEqual(encodeCheckpoint(a));
    expect([...b.pairs[0]!.reduction.backward.best.subarray(0, 2)]).toEqual([0.4, 0.5]);
    expect([...b.constant[0]!]).toEqual([0, 1, 0]);
    expect(b.doneTiles).toBe(2);
  });

  it('refuses a checkpoint of another plan', () => {
    expect(() => restoreCheckpoint(encodeCheckpoint(progress(5)), progress())).toThrow(/checkpoint does not fit this job's plan/);
  });
});

describe('names and limits', () => {
  it('every Redis key of a job shares its hash tag and the prefix', () => {
    const keys = jobKeys('j1', 'p');
    for (const key of Object.values(keys)) expect(key).toMatch(/^p:\{j1\}:/);
    expect(jobsIndexKey('p')).toBe('p:jobs');
  });

  it('credentials never survive redaction', () => {
    expect(redactUrl('nats://alice:s3cret@nats.local:4222')).toBe('nats://***@nats.local:4222');
    expect(redactUrl('redis://:s3cret@127.0.0.1:6379/0')).not.toContain('s3cret');
    expect(redactUrl('nats://tok3n@host:4222')).not.toContain('tok3n');
  });

  it('blocks are capped so a result fits max_payload, and --tile beyond it is refused', () => {
    expect(clusterBlock(64, 1e6, 1e6, 1 << 20, undefined) * 2 * resultPayloadBytes(1, 0)).toBeLessThanOrEqual(1 << 20);
    expect(clusterBlock(64, 1e6, 1e6, 1 << 20, 256)).toBe(256);
    expect(() => clusterBlock(64, 1e6, 1e6, 1 << 20, 100_000)).toThrow(/max_payload/);
  });
});
