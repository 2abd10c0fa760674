/**
 * A job's progress as one binary value: every pair's per-neuron state (and
 * its null's), each model's constant flags, and the done set. Cluster jobs
 * store their progress in chunks instead (chunks.ts, coordinator/cluster/
 * checkpoint-store.ts); a coordinator still restores this whole-job form
 * from the Redis key where earlier versions wrote it. The merge is
 * idempotent, so a result counted both here and in the results stream does
 * no harm.
 */
import { Reader, Writer } from '../binary.js';
import type { DirectionState } from '../core/index.js';
import { InternalError } from '../errors.js';
import type { JobProgress } from './progress.js';

const MAGIC = 0x4e434b32; // "NCK2"

const floats = (d: DirectionState) => [d.best, d.pen, d.penRho];
const ints = (d: DirectionState) => [d.arg, d.penArg];

/** The sizes a checkpoint must agree with: tiles, each model's neurons, and each direction state's length. */
export function checkpointShape(p: JobProgress): number[] {
  return [p.done.length, p.constant.length, ...p.constant.map((c) => c.length), ...p.states().map((d) => d.best.length)];
}

export function encodeCheckpoint(p: JobProgress): Uint8Array {
  const dims = checkpointShape(p);
  const w = new Writer().u32(MAGIC, dims.length, ...dims);
  for (const d of p.states()) for (const a of [...floats(d), ...ints(d)]) w.array(a);
  for (const c of p.constant) w.bytes(c);
  return w.bytes(p.done).done();
}

/** Copies a checkpoint into `p`, whose plan must be the one it was taken from (else an InternalError names both shapes). */
export function restoreCheckpoint(bytes: Uint8Array, p: JobProgress): void {
  const r = new Reader(bytes, 'checkpoint');
  const magic = r.u32();
  const want = checkpointShape(p);
  const count = magic === MAGIC ? r.u32() : -1;
  const got = count === want.length ? Array.from({ length: count }, () => r.u32()) : [];
  if (magic !== MAGIC || got.join() !== want.join()) {
    throw new InternalError(`checkpoint does not fit this job's plan (sizes ${got.join(',') || 'unreadable'}, the plan has ${want.join(',')})`);
  }
  const fill = (into: Float64Array | Uint32Array | Uint8Array) => {
    const raw = r.bytes(into.byteLength);
    new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(raw);
  };
  for (const d of p.states()) for (const a of [...floats(d), ...ints(d)]) fill(a);
  for (const c of p.constant) fill(c);
  fill(p.done);
  r.end();
  p.recount();
}
