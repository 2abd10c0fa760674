/**
 * Extract's output: one float32 .npy per layer, [M, ...one probe's shape],
 * written probe batch after probe batch (each file opened with its final
 * header, then appended to), so memory holds one batch of activations; and
 * the marker `extract.json`, by which `force` knows a set extract wrote.
 */
import { closeSync, openSync, readSync, write, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { InputError, InternalError } from '../shared/errors.js';
import { npyHeader, readJsonObject, strayEntry } from '../shared/formats/index.js';
import type { ImageLayout, ModelLayerInfo } from './runner.js';

export const EXTRACT_MARKER = 'extract.json';
export const EXTRACT_FORMAT = 'neurocorr-extract';
export const EXTRACT_SET = 'a set written by neurocorr extract';

/** Why `dir` is not a set extract wrote (its marker, and the files the marker lists), or null. */
export function extractOwnership(dir: string): string | null {
  const marker = readJsonObject(join(dir, EXTRACT_MARKER));
  const files = marker?.['files'];
  if (marker?.['format'] !== EXTRACT_FORMAT || !Array.isArray(files)) return `it has no ${EXTRACT_MARKER} with "format": "${EXTRACT_FORMAT}"`;
  return strayEntry(dir, new Set([EXTRACT_MARKER, ...files.filter((f): f is string => typeof f === 'string')]));
}

export interface WrittenLayer {
  readonly name: string;
  readonly kind: string;
  readonly file: string;
  /** One probe's shape as written: the layer's, or [neurons] when the runner could not tell it. */
  readonly shape: readonly number[];
  readonly layout: ImageLayout | null;
  readonly depth: number;
}

/** A file name for layer `index`: its position, then its name with anything unsafe in a file name replaced. */
const fileName = (index: number, name: string): string => `${String(index).padStart(3, '0')}_${name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100)}.npy`;

/** The .npy files of the selected layers, opened once the first batch shows each one's size. */
export class LayerFiles {
  private fds: number[] = [];
  private written: WrittenLayer[] = [];

  constructor(
    private readonly dir: string,
    private readonly layers: readonly ModelLayerInfo[],
    private readonly depths: readonly number[],
    private readonly probes: number,
    private readonly model: string,
    private readonly log: (line: string) => void,
  ) {}

  get files(): readonly WrittenLayer[] {
    return this.written;
  }

  /**
   * Appends one batch's activations of `count` probes (`first` the index of its first probe, for messages). The
   * files are written off the main thread (the next batch may run meanwhile); the next append waits for this one.
   * `nonFinite`: each layer's first NaN or infinity (-1: none), where a pool thread has looked already.
   */
  async append(
    outs: readonly Float32Array[],
    count: number,
    first: number,
    names: readonly string[],
    nonFinite: readonly number[] | null = null,
  ): Promise<void> {
    if (outs.length !== this.layers.length) throw new InternalError(`the runner returned ${outs.length} outputs for ${this.layers.length} layers`);
    if (this.fds.length === 0) this.open(outs, count);
    for (const [i, values] of outs.entries()) {
      const layer = this.written[i]!;
      const expected = count * layer.shape.reduce((a, b) => a * b, 1);
      if (values.length !== expected) {
        throw new InternalError(`layer ${layer.name} gave ${values.length} values for ${count} probes, expected ${expected}`);
      }
      const bad = nonFinite?.[i] ?? firstNonFinite(values);
      if (bad >= 0) {
        const probe = first + Math.floor(bad / (expected / count));
        const problem = `layer "${layer.name}" gives ${values[bad]} on probe ${names[probe] ?? probe}`;
        throw new InputError('E_INPUT_VALUES', this.model, problem, 'check the probes and their preprocessing; activations must be finite');
      }
    }
    await Promise.all(outs.map((values, i) => writeAll(this.fds[i]!, new Uint8Array(values.buffer, values.byteOffset, values.byteLength))));
  }

  private open(outs: readonly Float32Array[], count: number): void {
    for (const [i, layer] of this.layers.entries()) {
      const neurons = outs[i]!.length / count;
      const known = layer.shape.every((d) => d !== null) ? (layer.shape as number[]) : null;
      let shape: readonly number[];
      if (known !== null) {
        if (known.reduce((a, b) => a * b, 1) !== neurons)
          throw new InternalError(`layer ${layer.name} gave ${neurons} values a probe, not its shape ${JSON.stringify(known)}`);
        shape = known;
      } else if (Number.isInteger(neurons) && neurons > 0) {
        shape = [neurons];
        this.log(`extract: layer ${layer.name}: shape ${JSON.stringify(layer.shape)} not known to the runner; written flat, [M, ${neurons}]`);
      } else throw new InternalError(`layer ${layer.name} gave ${outs[i]!.length} values for ${count} probes`);
      const file = fileName(i, layer.name);
      const fd = openSync(join(this.dir, file), 'wx');
      this.fds.push(fd);
      writeSync(fd, npyHeader([this.probes, ...shape], 'f4'));
      const layout = shape.length === 3 ? layer.layout : null;
      this.written.push({ name: layer.name, kind: layer.kind, file, shape, layout, depth: this.depths[i]! });
    }
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds = [];
  }

  /** layers.json: the fingerprint, and each layer's file, name, depth and (rank 3) layout. */
  layersJson(fingerprint: string): string {
    const layers = this.written.map((l) => ({ file: l.file, name: l.name, depth: l.depth, ...(l.layout !== null ? { layout: l.layout } : {}) }));
    return `${JSON.stringify({ probes: fingerprint, layers }, null, 1)}\n`;
  }
}

const writeAsync = promisify(write);

/** Writes all of `bytes` at the file's position, in the libuv thread pool. */
async function writeAll(fd: number, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += (await writeAsync(fd, bytes, at, bytes.length - at, null)).bytesWritten;
}

/** The index of the first NaN or infinity in `values`, or -1: a sum of v * 0 turns NaN at the first one (a fast path for ~1e8 values a batch). */
export function firstNonFinite(values: Float32Array): number {
  // Four sums: one would wait on each addition's latency.
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = values.length - (values.length % 4);
  for (let i = 0; i < n; i += 4) {
    a += values[i]! * 0;
    b += values[i + 1]! * 0;
    c += values[i + 2]! * 0;
    d += values[i + 3]! * 0;
  }
  for (let i = n; i < values.length; i++) a += values[i]! * 0;
  return a + b + c + d === 0 ? -1 : values.findIndex((v) => !Number.isFinite(v));
}

/** sha256 over the files in order (a model.json and its weights, or an .onnx file). */
export function hashFiles(files: readonly string[]): string {
  const hash = createHash('sha256');
  const buffer = new Uint8Array(4 << 20);
  for (const file of files) {
    const fd = openSync(file, 'r');
    try {
      for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}
