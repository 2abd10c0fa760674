/**
 * An activation set as read from disk, before standardization: one entry per
 * layer, probe-major ([M, ...], C order), in model (depth) order.
 */

import type { Layout } from '../core/index.js';

export type { Layout } from '../core/index.js';

export interface RawLayer {
  /** Layer name (file stem, tensor name, or the name layers.json gives). */
  readonly name: string;
  /** Depth from layers.json / metadata; null means "use the layer's position". */
  readonly depth: number | null;
  /** Where the data came from, for error messages: a path, or `file.safetensors#tensor`. */
  readonly source: string;
  /** Full shape, probes first: [M, ...]. Rank >= 1, every dim > 0. */
  readonly shape: readonly number[];
  readonly dtype: 'f4' | 'f8';
  /**
   * Values of probes [start, start + count), C order; with `from` and
   * `width`, only values [from, from + width) of each probe's row. The
   * returned array may be a view over a shared buffer: use it before the next
   * read.
   */
  readonly read: (start: number, count: number, from?: number, width?: number) => Float32Array | Float64Array;
  /** Where the channel axis is on a rank >= 3 layer, as the file says; null when it does not (channels mode then needs the `layout` option). */
  readonly layout: Layout | null;
}

export interface RawModel {
  /** The path the user gave. */
  readonly path: string;
  readonly layers: readonly RawLayer[];
  /** Probe-set fingerprint if the set declares one, else null. */
  readonly fingerprint: string | null;
}
