/**
 * `neurocorr synth`: large, structured activation sets without model weights.
 *
 * Every model run with the same probe seed sees the same K latent features
 * per probe. A neuron is ReLU(w . latent + bias + noise) with its own random
 * w (conv neurons share a channel direction, perturbed per position), so two
 * models generated with different seeds have real matches; a fraction of
 * units is dead (always 0). Layers are written probe row by probe row, so
 * memory holds one layer's weights and one row, whatever M is.
 */
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { architectureLayers, type ArchLayer } from './architectures.js';
import { checkOutputSet, readJsonObject, replaceDirectory, strayEntry } from '../shared/formats/index.js';
import { runSteps, runStepsAsync, type Steps } from '../shared/steps.js';
import { dropTemp, tempPath } from '../shared/temp.js';
import { npyHeader } from '../shared/formats/index.js';
import { createRng, hashString, type Layout } from '../shared/core/index.js';
import { UsageError } from '../shared/errors.js';

export interface SynthOptions {
  readonly arch: string;
  readonly probes: number;
  readonly resolution: number;
  readonly scale: number;
  readonly allConvs: boolean;
  /** Seeds this model's weights. */
  readonly seed: number;
  /** Seeds the shared latent features: models to be compared must share it. */
  readonly probeSeed: number;
  readonly latents?: number;
  /** The latent features this model's neurons read: [from, to) of the K (default all); `none`: no feature, only noise (a model unrelated to every other). */
  readonly features?: { readonly from: number; readonly to: number } | 'none';
  readonly deadFraction?: number;
  /** Depth of each layer: its position, or its ResNet stage. */
  readonly depth: 'position' | 'stage';
  /** Conv layers stored [C, H, W] (`nchw`, the default) or [H, W, C] per probe; layers.json says which. */
  readonly layout?: Layout;
  /** Replace `out` if synth wrote it (its marker says so, and it holds nothing else). */
  readonly force?: boolean;
}

export interface SynthResult {
  readonly layers: number;
  readonly neurons: number;
  readonly bytes: number;
}

function gaussian(rng: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(rng() + 1e-300)) * Math.cos(2 * Math.PI * rng());
}

export function probeFingerprint(probeSeed: number, probes: number): string {
  return `synth:${probeSeed}:${probes}`;
}

/** Marks a directory synth wrote, so `force` replaces it and nothing else. */
export const SYNTH_MARKER = 'synth.json';
export const SYNTH_FORMAT = 'neurocorr-synth';
const SYNTH_SET = 'a set written by neurocorr synth';

/** Why `dir` is not a set synth wrote (its marker, layers.json and the layers the marker lists), or null. */
export function synthOwnership(dir: string): string | null {
  const marker = readJsonObject(join(dir, SYNTH_MARKER));
  const files = marker?.['files'];
  if (marker?.['format'] !== SYNTH_FORMAT || !Array.isArray(files)) return `it has no ${SYNTH_MARKER} with "format": "${SYNTH_FORMAT}"`;
  return strayEntry(dir, new Set([SYNTH_MARKER, 'layers.json', ...files.filter((f): f is string => typeof f === 'string')]));
}

/** Writes the set into `out` (a new directory), through a temporary directory renamed at the end. */
export function synthesize(out: string, options: SynthOptions, onLayer?: (done: number, total: number) => void): SynthResult {
  return runSteps(synthSteps(out, options, onLayer));
}

/** As synthesize, letting the event loop in between probe rows, so a signal stops it (and the CLI removes the temp directory). */
export function synthesizeAsync(out: string, options: SynthOptions, onLayer?: (done: number, total: number) => void): Promise<SynthResult> {
  return runStepsAsync(synthSteps(out, options, onLayer));
}

function* synthSteps(out: string, options: SynthOptions, onLayer?: (done: number, total: number) => void): Steps<SynthResult> {
  const target = { inputs: [], force: options.force === true, what: SYNTH_SET, owned: synthOwnership };
  checkOutputSet(out, target);
  const layers = architectureLayers(options.arch, options.resolution, options.scale, options.allConvs);
  const k = options.latents ?? 16;
  const { features } = options;
  if (
    features !== undefined &&
    features !== 'none' &&
    !(Number.isInteger(features.from) && features.from >= 0 && features.from < features.to && features.to <= k)
  ) {
    throw new UsageError((o) => `${o('features')} must be FROM:TO with 0 <= FROM < TO <= ${k} (the latent features), or none`);
  }
  const m = options.probes;
  const normal = gaussian(createRng(options.probeSeed));
  // latent[p * k + q]: feature q of probe p.
  const latent = Float64Array.from({ length: m * k }, normal);

  const tmp = tempPath(out);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  let neurons = 0;
  let bytes = 0;
  try {
    const entries = [];
    for (const [i, layer] of layers.entries()) {
      const file = `${String(i).padStart(3, '0')}_${layer.name}.npy`;
      const written = yield* writeLayer(join(tmp, file), layer, latent, k, m, options);
      neurons += written.neurons;
      bytes += written.bytes;
      onLayer?.(i + 1, layers.length);
      const layout = layer.shape.length === 3 ? { layout: options.layout ?? 'nchw' } : {};
      entries.push({ file, name: layer.name, depth: options.depth === 'stage' ? layer.stage : i, ...layout });
    }
    writeFileSync(join(tmp, 'layers.json'), `${JSON.stringify({ probes: probeFingerprint(options.probeSeed, m), layers: entries }, null, 1)}\n`);
    const marker = { format: SYNTH_FORMAT, version: 1, arch: options.arch, files: entries.map((e) => e.file) };
    writeFileSync(join(tmp, SYNTH_MARKER), `${JSON.stringify(marker, null, 1)}\n`);
    yield true;
    // What is at `out` may have changed during the run.
    checkOutputSet(out, target);
    replaceDirectory(tmp, out);
  } finally {
    dropTemp(tmp);
  }
  return { layers: layers.length, neurons, bytes };
}

function* writeLayer(
  path: string,
  layer: ArchLayer,
  latent: Float64Array,
  k: number,
  m: number,
  options: SynthOptions,
): Steps<{ neurons: number; bytes: number }> {
  const n = layer.shape.reduce((a, b) => a * b, 1);
  const channels = layer.shape[0]!;
  const perChannel = n / channels;
  const rng = createRng(hashString(layer.name, options.seed >>> 0));
  const normal = gaussian(rng);
  const scale = 1 / Math.sqrt(k);
  const channelDirection = Float64Array.from({ length: channels * k }, normal);
  const weights = new Float32Array(n * k);
  const bias = new Float32Array(n);
  const dead = new Uint8Array(n);
  const deadFraction = options.deadFraction ?? 0.05;
  const features = options.features ?? { from: 0, to: k };
  const reads = (q: number) => features !== 'none' && q >= features.from && q < features.to;
  for (let j = 0; j < n; j++) {
    const c = Math.floor(j / perChannel);
    for (let q = 0; q < k; q++) {
      const w = (channelDirection[c * k + q]! + 0.5 * normal()) * scale;
      weights[j * k + q] = reads(q) ? w : 0;
    }
    bias[j] = 0.5 * normal() - 0.2;
    dead[j] = rng() < deadFraction ? 1 : 0;
  }
  const fd = openSync(path, 'w');
  try {
    const nhwc = options.layout === 'nhwc' && layer.shape.length === 3;
    const [c0, h, w] = layer.shape as [number, number?, number?];
    const header = npyHeader(nhwc ? [m, h!, w!, c0] : [m, ...layer.shape], 'f4');
    // Position of unit j (channel-major) in the stored row.
    const at = (j: number): number => (nhwc ? (j % perChannel) * channels + Math.floor(j / perChannel) : j);
    writeSync(fd, header);
    const row = new Float32Array(n);
    const rowBytes = new Uint8Array(row.buffer);
    for (let p = 0; p < m; p++) {
      for (let j = 0; j < n; j++) {
        if (dead[j] === 1) {
          row[at(j)] = 0;
          continue;
        }
        let v = bias[j]! + 0.3 * normal();
        for (let q = 0; q < k; q++) v += weights[j * k + q]! * latent[p * k + q]!;
        row[at(j)] = v > 0 ? v : 0;
      }
      writeSync(fd, rowBytes);
      yield;
    }
    return { neurons: n, bytes: header.length + m * n * 4 };
  } finally {
    closeSync(fd);
  }
}
