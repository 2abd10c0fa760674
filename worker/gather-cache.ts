/**
 * The permutation null's gathered sample blocks (each a block of sampled
 * rows, permuted), kept for the tiles that read them next. Buffers are
 * recycled, never dropped: a fresh SharedArrayBuffer per gather is freed
 * only when every thread that saw it collects its garbage, which with long
 * rows (channels semantics: M x H x W samples) let the null's copies pile
 * up to several times the models' size.
 *
 * At most `capacity` buffers are kept; a tile in flight pins its buffer, so
 * when every kept buffer is pinned one more is made: the buffers never
 * exceed `capacity` plus the tiles in flight.
 */

interface Entry {
  readonly key: string;
  readonly buffer: Float32Array;
  rows: Float32Array;
  pins: number;
}

export class GatherCache {
  /** Entries by key, least recently used first. */
  private readonly entries = new Map<string, Entry>();
  private readonly free: Float32Array[] = [];
  private made = 0;

  /**
   * `slot`: floats of the largest block; `capacity`: buffers kept
   * (at least 1).
   */
  constructor(
    private readonly slot: number,
    private readonly capacity: number,
  ) {}

  /** Buffers made so far (each `slot` floats). */
  get buffers(): number {
    return this.made;
  }

  /** The rows under `key`, pinned until `release(key)`; `fill` gathers them into `out` (length `floats`) on a miss. */
  acquire(key: string, floats: number, fill: (out: Float32Array) => void): Float32Array {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      hit.pins++;
      return hit.rows;
    }
    const buffer = this.take();
    const rows = buffer.subarray(0, floats);
    try {
      fill(rows);
    } catch (err) {
      this.free.push(buffer);
      throw err;
    }
    this.entries.set(key, { key, buffer, rows, pins: 1 });
    return rows;
  }

  release(key: string): void {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.pins > 0) entry.pins--;
  }

  private take(): Float32Array {
    const spare = this.free.pop();
    if (spare !== undefined) return spare;
    if (this.made >= this.capacity) {
      for (const entry of this.entries.values()) {
        if (entry.pins > 0) continue;
        this.entries.delete(entry.key);
        return entry.buffer;
      }
    }
    this.made++;
    return new Float32Array(new SharedArrayBuffer(this.slot * 4));
  }
}
