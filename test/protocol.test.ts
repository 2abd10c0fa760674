/** The cluster's wire formats and key names: round trips, sizes, and refusals. */
import { describe, expect, it } from 'vitest';
import { clusterBlock } from '../dist/coordinator/cluster/coordinator.js';
import { encodeCheckpoint, restoreCheckpoint } from '../dist/shared/cluster/index.js';
import { redactUrl } from '../dist/shared/cluster/index.js';
import { checkJobName, decodeResult, decodeTile, encodeFailure, encodeResult, encodeTile, resultPayloadBytes } from '../dist/shared/cluster/index.js';
import { Reduction } from '../dist/shared/core/index.js';
import { jobKeys, jobsIndexKey } from '../dist/shared/cluster/index.js';
import { allocTileResult, type Tile } from '../dist/shared/core/index.js';

const tile: Tile = { id: 7, f: { layer: 1, start: 10, count: 3 }, g: { layer: 0, start: 4, count: 2 } };
const provenance = { worker: 'w-1', kernel: 'native-avx512', deliveries: 2, milliseconds: 1.5 };

describe('protocol codecs', () => {
  it('a tile spec round-trips', () => {
    expect(decodeTile(encodeTile('job-a', tile))).toEqual({ job: 'job-a', tile, null: null });
    expect(decodeTile(encodeTile('job-a', tile, { k: 3, side: 1 })).null).toEqual({ k: 3, side: 1 });
  });

  it('a tile result round-trips bit for bit, as raw buffers, even from an unaligned view', () => {
    const result = allocTileResult(3, 2);
    result.rowBest.set([0.5, 1 / 3, Number.MIN_VALUE]);
    result.colBest.set([0.25, 1 - 2 ** -52]);
    result.rowArg.set([4, 5, 0xfffffffe]);
    result.colArg.set([10, 12]);
    const constant = Uint8Array.of(0, 1, 0, 0, 1);
    const bytes = encodeResult('job-a', tile, result, constant, provenance);
    // NATS hands out Buffers that are views into a larger pool, at odd offsets.
    const pooled = new Uint8Array(bytes.length + 3);
    pooled.set(bytes, 3);
    const decoded = decodeResult(pooled.subarray(3));
    expect(decoded.kind).toBe('result');
    if (decoded.kind !== 'result') return;
    expect(decoded).toMatchObject({ job: 'job-a', tile, ...provenance });
    expect([...decoded.result.rowBest]).toEqual([...result.rowBest]);
    expect([...decoded.result.colBest]).toEqual([...result.colBest]);
    expect([...decoded.result.rowArg]).toEqual([...result.rowArg]);
    expect([...decoded.result.colArg]).toEqual([...result.colArg]);
    expect([...decoded.constant]).toEqual([...constant]);
    expect(bytes.length - resultPayloadBytes(3, 2)).toBeLessThan(80);
  });

  it('a failure carries its message', () => {
    const decoded = decodeResult(encodeFailure('job-a', tile, 'shard 3 is damaged', provenance));
    expect(decoded).toMatchObject({ kind: 'failure', error: 'shard 3 is damaged', worker: 'w-1', deliveries: 2 });
  });

  it('truncated or foreign messages are refused', () => {
    const bytes = encodeTile('job-a', tile);
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
  const layers = [{ name: 'l', depth: 0, source: 's', shape: [3], start: 0, count: 3, total: 3, constant: 0 }];
  const shape = { n: 3, layers, constant: new Uint8Array(3) };
  const progress = () => {
    const reduction = new Reduction(shape, { ...shape, constant: new Uint8Array(3) });
    return { reduction, done: new Uint8Array(4), nulls: null };
  };

  it('restores exactly what was saved', () => {
    const a = progress();
    const t: Tile = { id: 2, f: { layer: 0, start: 0, count: 3 }, g: { layer: 0, start: 0, count: 3 } };
    const r = allocTileResult(3, 3);
    r.rowBest.set([0.1, 0.2, 0.3]);
    r.colBest.set([0.4, 0.5, 0.6]);
    a.reduction.merge(t, r);
    a.done[2] = 1;
    a.reduction.g.constant[1] = 1;
    const b = progress();
    restoreCheckpoint(encodeCheckpoint(a), b);
    expect(encodeCheckpoint(b)).toEqual(encodeCheckpoint(a));
    expect([...b.reduction.backward.best]).toEqual([0.4, 0.5, 0.6]);
  });

  it('refuses a checkpoint of another plan', () => {
    const other = { ...progress(), done: new Uint8Array(5) };
    expect(() => restoreCheckpoint(encodeCheckpoint(other), progress())).toThrow(/checkpoint is for 3x3 neurons in 5 tiles/);
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
