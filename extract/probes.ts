/**
 * Probe sets for extract: a folder of JPEG/PNG images (sorted by file name),
 * an IDX file of images (MNIST's format, optionally gzipped), or a .npy of
 * model inputs [M, ...]. Opening one reads every probe once: it checks each
 * image's header and computes the fingerprint, a sha256 of what identifies
 * the probes (the images' names and bytes, or the arrays' shape and values)
 * and nothing of how a model is fed them, so that two models fed the same
 * probes with different sizes or preprocessing can be scored together.
 */
import { createHash, type Hash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError } from '../shared/errors.js';
import { formatShape, npyHeaderLength, parseNpyHeader, probeReader, readHead, requireRegularFile, type ProbeReader } from '../shared/formats/index.js';
import { IDX_FIX, readIdx } from './idx.js';
import { checkImageBytes, decodeImage, fitPixels, toInput, type Preprocess, type Sized } from './pixels.js';

export type ProbeKind = 'images' | 'idx' | 'npy';

/** How a batch of probes becomes model inputs: images by geometry and preprocessing; a .npy as it is. */
export type Feed = { readonly kind: 'pixels'; readonly geometry: Sized; readonly preprocess: Preprocess } | { readonly kind: 'array'; readonly size: number };

export interface ProbeSet {
  readonly kind: ProbeKind;
  readonly path: string;
  /** One name per probe, in order: image file names, or `file[i]`. */
  readonly names: readonly string[];
  readonly fingerprint: string;
  /** Images: [H, W] when every image has that size, else null; IDX: [H, W, C]; .npy: one probe's shape. */
  readonly shape: readonly number[] | null;
  /** Images: the first image whose size differs from the first one's, and how, or null. */
  readonly mixed: { readonly file: string; readonly problem: string } | null;
  /** Probes [start, start + count) as model inputs. */
  read(start: number, count: number, feed: Feed): Promise<Float32Array>;
}

const PROBES_FIX = 'pass a folder of JPEG/PNG images, an IDX image file (.gz allowed) or a .npy of model inputs [M, ...]';
const IMAGE = /\.(jpe?g|png)$/i;

function fingerprint(hash: Hash): string {
  return `sha256:${hash.digest('hex')}`;
}

function startHash(identity: Record<string, unknown>): Hash {
  return createHash('sha256').update(`neurocorr-probes 1\n${JSON.stringify(identity)}\n`);
}

/** What kind of probe set `path` is, from the file system alone: a folder (images), a .npy, or another file (IDX). */
export function probeKind(path: string): ProbeKind {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return 'images';
    requireRegularFile(path, st);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError('E_INPUT_MISSING', path, 'no such file or directory', PROBES_FIX, { cause: err });
  }
  return path.toLowerCase().endsWith('.npy') ? 'npy' : 'idx';
}

/** Opens the probe set at `path`, its first `limit` probes (all when null). */
export async function openProbes(path: string, limit: number | null): Promise<ProbeSet> {
  const kind = probeKind(path);
  if (kind === 'images') return openImages(path, limit);
  return kind === 'npy' ? openNpy(path, limit) : openIdx(path, limit);
}

async function openImages(dir: string, limit: number | null): Promise<ProbeSet> {
  const all = readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.isDirectory() && IMAGE.test(e.name))
    .map((e) => e.name)
    .sort();
  if (all.length === 0) throw new InputError('E_INPUT_MISSING', dir, 'folder holds no .jpg, .jpeg or .png images', PROBES_FIX);
  const names = limit === null ? all : all.slice(0, limit);
  const files = names.map((n) => join(dir, n));
  const sharp = (await import('sharp')).default;
  const hash = startHash({ kind: 'images', names });
  let first: { width: number; height: number } | null = null;
  let mixed: { file: string; problem: string } | null = null;
  for (const file of files) {
    let bytes: Buffer;
    let size: { width: number; height: number };
    try {
      requireRegularFile(file, statSync(file));
      bytes = readFileSync(file);
      checkImageBytes(file, bytes);
      const meta = await sharp(bytes).metadata();
      size = { width: meta.width, height: meta.height };
    } catch (err) {
      if (err instanceof InputError) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new InputError(
        'E_INPUT_FORMAT',
        file,
        `is not a readable JPEG or PNG image (${why})`,
        'remove it from the probe folder, or save it again as JPEG or PNG',
        {
          cause: err,
        },
      );
    }
    hash.update(bytes);
    first ??= size;
    if (mixed === null && (size.width !== first.width || size.height !== first.height)) {
      mixed = { file, problem: `is ${size.width}x${size.height} but ${files[0]} is ${first.width}x${first.height}` };
    }
  }
  return {
    kind: 'images',
    path: dir,
    names,
    fingerprint: fingerprint(hash),
    shape: mixed === null && first !== null ? [first.height, first.width] : null,
    mixed,
    async read(start, count, feed) {
      const g = pixelFeed(feed);
      const out = new Float32Array(count * g.size);
      const decoded = await Promise.all(files.slice(start, start + count).map((f) => decodeImage(f, g.geometry)));
      decoded.forEach((pixels, i) => toInput(pixels, g.geometry, g.preprocess, out, i * g.size));
      return out;
    },
  };
}

function pixelFeed(feed: Feed): { geometry: Sized; preprocess: Preprocess; size: number } {
  if (feed.kind !== 'pixels') throw new Error('image probes are fed as pixels');
  const { geometry, preprocess } = feed;
  return { geometry, preprocess, size: geometry.height * geometry.width * geometry.channels };
}

function openNpy(file: string, limit: number | null): ProbeSet {
  const { head, size } = readHead(file, 64 * 1024);
  const need = npyHeaderLength(head);
  const { shape, dtype, dataOffset } = parseNpyHeader(need !== null && need > head.length ? readHead(file, need).head : head, size, file);
  if (shape.length < 2 || shape[0] === 0) {
    throw new InputError('E_INPUT_SHAPE', file, `holds shape ${formatShape(shape)}`, 'save the model inputs as one array [M, ...one input], M >= 1');
  }
  const m = limit === null ? shape[0]! : Math.min(limit, shape[0]!);
  const perProbe = shape.slice(1);
  const width = perProbe.reduce((a, b) => a * b, 1);
  const read: ProbeReader = probeReader(file, dataOffset, dtype, width);
  const hash = startHash({ kind: 'npy', dtype, shape: [m, ...perProbe] });
  const chunk = Math.max(1, Math.floor((4 << 20) / (width * 8)));
  for (let p = 0; p < m; p += chunk) {
    const rows = read(p, Math.min(chunk, m - p));
    hash.update(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
  }
  const stem = basename(file);
  return {
    kind: 'npy',
    path: file,
    names: Array.from({ length: m }, (_, i) => `${stem}[${i}]`),
    fingerprint: fingerprint(hash),
    shape: perProbe,
    mixed: null,
    async read(start, count) {
      // A copy: the reader's array is a view over a buffer the next read reuses.
      return Float32Array.from(read(start, count));
    },
  };
}

async function openIdx(file: string, limit: number | null): Promise<ProbeSet> {
  const fail = (problem: string) => new InputError('E_INPUT_FORMAT', file, problem, `${PROBES_FIX}; ${IDX_FIX}`);
  const { height, width, channels, count: m, pixels } = await readIdx(file, limit, fail);
  const per = height * width * channels;
  const stem = basename(file);
  const hash = startHash({ kind: 'idx', shape: [m, height, width, channels] }).update(pixels);
  const from = { height, width, channels };
  return {
    kind: 'idx',
    path: file,
    names: Array.from({ length: m }, (_, i) => `${stem}[${i}]`),
    fingerprint: fingerprint(hash),
    shape: [height, width, channels],
    mixed: null,
    async read(first, count, feed) {
      const g = pixelFeed(feed);
      const out = new Float32Array(count * g.size);
      for (let i = 0; i < count; i++) {
        const image = pixels.subarray((first + i) * per, (first + i + 1) * per);
        toInput(await fitPixels(image, from, g.geometry, `${file}[${first + i}]`), g.geometry, g.preprocess, out, i * g.size);
      }
      return out;
    },
  };
}
