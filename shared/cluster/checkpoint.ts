/**
 * A cluster job's progress as one binary value: the reduction's per-neuron
 * state, the constant flags seen so far, and which tiles are done. A restarted
 * coordinator restores it and merges on; since the merge is idempotent, a
 * result counted both here and in the results stream does no harm.
 */
import { Reader, Writer } from './binary.js';
import { InternalError } from '../errors.js';
import type { NullReduction } from '../core/index.js';
import type { DirectionState, Reduction } from '../core/index.js';

const MAGIC = 0x4e434b31; // "NCK1"

export interface JobProgress {
  /** Its models' constant flags are OR-ed in from results, and saved with it. */
  readonly reduction: Reduction;
  /** 1 per finished tile (the main tiles, then the null's). */
  readonly done: Uint8Array;
  /** The permutation null's per-sample state, when the job has one. */
  readonly nulls: NullReduction | null;
}

const floats = (d: DirectionState) => [d.best, d.pen, d.penRho];
const ints = (d: DirectionState) => [d.arg, d.penArg];
const nullStates = (p: JobProgress) => p.nulls?.states.flat() ?? [];
const nullShape = (p: JobProgress) => [p.nulls?.states.length ?? 0, ...(p.nulls?.plan.samples.map((s) => s.indices.length) ?? [0, 0])] as const;

export function encodeCheckpoint(p: JobProgress): Uint8Array {
  const { forward, backward } = p.reduction;
  const w = new Writer().u32(MAGIC, forward.best.length, backward.best.length, p.done.length, ...nullShape(p));
  for (const a of [...floats(forward), ...floats(backward), ...ints(forward), ...ints(backward)]) w.array(a);
  for (const d of nullStates(p)) for (const a of [...floats(d), ...ints(d)]) w.array(a);
  return w.bytes(p.reduction.f.constant).bytes(p.reduction.g.constant).bytes(p.done).done();
}

/** Copies a checkpoint into `p`, whose sizes must match the job's plan. */
export function restoreCheckpoint(bytes: Uint8Array, p: JobProgress): void {
  const r = new Reader(bytes, 'checkpoint');
  const [magic, nf, ng, tiles, k, sf, sg] = [r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32()];
  const { forward, backward } = p.reduction;
  const [pk, psf, psg] = nullShape(p);
  if (magic !== MAGIC || nf !== forward.best.length || ng !== backward.best.length || tiles !== p.done.length || k !== pk || sf !== psf || sg !== psg) {
    throw new InternalError(
      `checkpoint is for ${nf}x${ng} neurons in ${tiles} tiles (null ${k} x ${sf}+${sg}), but the job plans ${forward.best.length}x${backward.best.length} in ${p.done.length} (null ${pk} x ${psf}+${psg})`,
    );
  }
  const fill = (into: Float64Array | Uint32Array | Uint8Array) => {
    const raw = r.bytes(into.byteLength);
    new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(raw);
  };
  for (const a of [...floats(forward), ...floats(backward), ...ints(forward), ...ints(backward)]) fill(a);
  for (const d of nullStates(p)) for (const a of [...floats(d), ...ints(d)]) fill(a);
  for (const a of [p.reduction.f.constant, p.reduction.g.constant, p.done]) fill(a);
  r.end();
}
