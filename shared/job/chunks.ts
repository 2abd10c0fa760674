/**
 * A job's progress cut into fixed-size chunks for incremental checkpoints.
 * A region is a set of parallel arrays indexed alike (a direction state's
 * five arrays, a model's constant flags, the done set); chunk k of a region
 * holds elements [k·L, (k+1)·L) of each of its arrays, concatenated. Merging
 * marks the chunks it writes; a checkpoint takes the marked ones and writes
 * only those, so its cost follows what changed, not the job's size.
 */
import { InternalError } from '../errors.js';

type StateArray = Float64Array | Uint32Array | Uint8Array;

export interface Region {
  readonly arrays: readonly StateArray[];
  /**
   * Encoded when the chunks are taken rather than when written. The done set
   * is: a checkpoint may then write state chunks that hold more merges than
   * its done set claims (merging again is harmless), never fewer.
   */
  readonly eager?: boolean;
}

/** Neurons (or tiles) per chunk: 2 MiB of a direction state, 64 KiB of flags. */
export const DEFAULT_CHUNK_LENGTH = 1 << 16;

/** The chunks taken for one checkpoint: their ids, and the bytes of the eager ones. */
export interface TakenChunks {
  readonly ids: readonly number[];
  readonly eager: ReadonlyMap<number, Uint8Array>;
}

export class CheckpointChunks {
  /** Id of each region's first chunk; the last entry is the total. */
  private readonly first: number[] = [0];
  private readonly flags: Uint8Array;
  private dirty: number[] = [];

  constructor(
    private readonly regions: readonly Region[],
    readonly length = DEFAULT_CHUNK_LENGTH,
  ) {
    if (!Number.isInteger(length) || length < 1) throw new RangeError(`checkpoint chunk length must be a positive integer, got ${length}`);
    for (const r of regions) this.first.push(this.first.at(-1)! + Math.ceil(r.arrays[0]!.length / length));
    this.flags = new Uint8Array(this.total);
  }

  get total(): number {
    return this.first.at(-1)!;
  }

  /** Chunks marked since they were last taken. */
  get pending(): number {
    return this.dirty.length;
  }

  /** Marks the chunks holding elements [start, start + count) of region `region`. */
  mark(region: number, start: number, count: number): void {
    if (count <= 0) return;
    const base = this.first[region]!;
    const last = base + Math.floor((start + count - 1) / this.length);
    for (let id = base + Math.floor(start / this.length); id <= last; id++) {
      if (this.flags[id] === 1) continue;
      this.flags[id] = 1;
      this.dirty.push(id);
    }
  }

  /** Marks every chunk (a store that lost the checkpoint gets all of it again). */
  markAll(): void {
    for (let id = 0; id < this.total; id++) this.putBack([id]);
  }

  /** Hands out the marked chunks and clears them; eager regions are encoded now. */
  take(): TakenChunks {
    const ids = this.dirty.sort((a, b) => a - b);
    this.dirty = [];
    const eager = new Map<number, Uint8Array>();
    for (const id of ids) {
      this.flags[id] = 0;
      if (this.regions[this.regionOf(id)]!.eager === true) eager.set(id, this.encode(id));
    }
    return { ids, eager };
  }

  /** Marks again chunks whose write failed. */
  putBack(ids: readonly number[]): void {
    for (const id of ids) {
      if (this.flags[id] === 1) continue;
      this.flags[id] = 1;
      this.dirty.push(id);
    }
  }

  /** A chunk's bytes now: each array's slice in turn, as stored in memory (little-endian). */
  encode(id: number): Uint8Array {
    const slices = this.slices(id);
    const out = new Uint8Array(slices.reduce((sum, s) => sum + s.byteLength, 0));
    let at = 0;
    for (const s of slices) {
      out.set(s, at);
      at += s.byteLength;
    }
    return out;
  }

  /** Copies a chunk's bytes back; false when their length does not fit the chunk. */
  decode(id: number, bytes: Uint8Array): boolean {
    const slices = this.slices(id);
    if (bytes.byteLength !== slices.reduce((sum, s) => sum + s.byteLength, 0)) return false;
    let at = 0;
    for (const s of slices) {
      s.set(bytes.subarray(at, at + s.byteLength));
      at += s.byteLength;
    }
    return true;
  }

  /** Bytes of chunk `id`. */
  size(id: number): number {
    return this.slices(id).reduce((sum, s) => sum + s.byteLength, 0);
  }

  private regionOf(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.total) throw new InternalError(`checkpoint chunk ${id} is out of range (the job has ${this.total})`);
    let lo = 0;
    let hi = this.regions.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.first[mid]! <= id) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private slices(id: number): Uint8Array[] {
    const region = this.regionOf(id);
    const start = (id - this.first[region]!) * this.length;
    return this.regions[region]!.arrays.map((a) => {
      const end = Math.min(a.length, start + this.length);
      return new Uint8Array(a.buffer, a.byteOffset + start * a.BYTES_PER_ELEMENT, (end - start) * a.BYTES_PER_ELEMENT);
    });
  }
}
