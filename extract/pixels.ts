/**
 * Images to model inputs: decoded with sharp (alpha flattened on mid grey,
 * sRGB or greyscale, 8 bits), resized to cover the input's H x W and
 * centre-cropped, preprocessed, and laid out as the model's input wants.
 */
import { readFileSync } from 'node:fs';
import type * as SharpModule from 'sharp';
import type { Sharp } from 'sharp';
import { InputError, UsageError } from '../shared/errors.js';
import type { ModelInputInfo } from './runner.js';

export { PREPROCESS } from '../shared/options/index.js';
import type { PREPROCESS } from '../shared/options/index.js';
export type Preprocess = (typeof PREPROCESS)[number];

/** Where an image's values go in one probe's input: [H, W, C], [C, H, W], [H, W] or H*W flat (the last two grey). */
export type PixelLayout = 'nhwc' | 'nchw' | 'hw' | 'flat';

export interface Geometry {
  readonly height: number | null;
  readonly width: number | null;
  readonly channels: 1 | 3;
  readonly layout: PixelLayout;
}

export interface Sized extends Geometry {
  readonly height: number;
  readonly width: number;
}

const NOT_IMAGE_FIX = 'pass the probes as a .npy of model inputs [M, ...input shape] instead';

/** How images feed `input`, from its per-probe shape; an input that takes no image is an InputError naming the model. */
export function imageGeometry(input: ModelInputInfo, model: string): Geometry {
  const s = input.shape;
  const notImage = (why: string) => new InputError('E_INPUT_SHAPE', model, `its input ${JSON.stringify(s)} ${why}`, NOT_IMAGE_FIX);
  const channels = (c: number | null | undefined): 1 | 3 => {
    if (c !== 1 && c !== 3) throw notImage(`has ${c ?? 'an open number of'} channels; images give 1 (grey) or 3 (RGB)`);
    return c;
  };
  if (s.length === 3) {
    const layout = input.layout ?? (s[2] === 1 || s[2] === 3 ? 'nhwc' : 'nchw');
    return layout === 'nhwc'
      ? { height: s[0]!, width: s[1]!, channels: channels(s[2]), layout }
      : { height: s[1]!, width: s[2]!, channels: channels(s[0]), layout };
  }
  if (s.length === 2) return { height: s[0]!, width: s[1]!, channels: 1, layout: 'hw' };
  const side = s.length === 1 && s[0] !== null ? Math.sqrt(s[0]!) : NaN;
  if (Number.isInteger(side)) return { height: side, width: side, channels: 1, layout: 'flat' };
  throw notImage('is not an image: images feed [H, W, C], [C, H, W], [H, W] or a square H*W');
}

/** One probe's input shape for `g`. */
export function inputShape(g: Sized): number[] {
  if (g.layout === 'nhwc') return [g.height, g.width, g.channels];
  if (g.layout === 'nchw') return [g.channels, g.height, g.width];
  return g.layout === 'hw' ? [g.height, g.width] : [g.height * g.width];
}

/** Refuses preprocessing that needs colour on a grey input. */
export function checkPreprocess(preprocess: Preprocess, g: Geometry): void {
  if ((preprocess === 'caffe' || preprocess === 'torch') && g.channels !== 3) {
    throw new UsageError((o) => `${o('preprocess')} ${preprocess} normalizes RGB channels, but the model takes grey images; use tf, unit or none`);
  }
}

const GREY = '#808080';

let sharpModule: Promise<typeof SharpModule> | null = null;
const loadSharp = (): Promise<typeof SharpModule> => (sharpModule ??= import('sharp'));

async function finish(image: Sharp, g: Sized, file: string): Promise<Uint8Array> {
  const resized = image.resize(g.width, g.height, { fit: 'cover' });
  const coloured = g.channels === 1 ? resized.greyscale() : resized.toColourspace('srgb');
  try {
    const { data, info } = await coloured.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== g.channels || info.width !== g.width || info.height !== g.height) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${g.width}x${g.height}x${g.channels}`);
    }
    return data;
  } catch (err) {
    throw new InputError(
      'E_INPUT_FORMAT',
      file,
      `cannot be decoded as an image (${(err as Error).message})`,
      'remove the file from the probes, or save it again as JPEG or PNG',
      {
        cause: err,
      },
    );
  }
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];

/** What else `bytes` look like, for the message. */
function otherFormat(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart();
  if (text.startsWith('GIF8')) return 'it holds a GIF image';
  if (text.startsWith('RIFF') && text.slice(8, 12) === 'WEBP') return 'it holds a WebP image';
  if (text.startsWith('<')) return 'it holds XML or SVG text';
  return 'its first bytes are not those of a PNG or a JPEG file';
}

/**
 * Refuses bytes that are not a PNG or JPEG file, whatever the file's name: the
 * decoder reads many more formats (GIF, SVG, TIFF...), which extract does
 * not promise to read the same way everywhere.
 */
export function checkImageBytes(file: string, bytes: Uint8Array): void {
  const starts = (magic: readonly number[]) => magic.every((b, i) => bytes[i] === b);
  if (starts(PNG) || starts(JPEG)) return;
  throw new InputError(
    'E_INPUT_FORMAT',
    file,
    `is not a readable JPEG or PNG image (${otherFormat(bytes)})`,
    'remove it from the probe folder, or save it again as JPEG or PNG',
  );
}

/** An image file's pixels, [H, W, C] uint8, sized and coloured for `g`. */
export async function decodeImage(file: string, g: Sized): Promise<Uint8Array> {
  const sharp = (await loadSharp()).default;
  const bytes = readFileSync(file);
  checkImageBytes(file, bytes);
  return finish(sharp(bytes).flatten({ background: GREY }), g, file);
}

/** Raw pixels [h, w, c] (an IDX image) sized and coloured for `g`; a copy-free view when they already fit. */
export async function fitPixels(pixels: Uint8Array, from: { height: number; width: number; channels: number }, g: Sized, source: string): Promise<Uint8Array> {
  if (from.height === g.height && from.width === g.width && from.channels === g.channels) return pixels;
  const sharp = (await loadSharp()).default;
  return finish(sharp(pixels, { raw: { width: from.width, height: from.height, channels: from.channels as 1 | 3 } }), g, source);
}

const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

/** Writes one probe's input into `out` at `offset`: `pixels` ([H, W, C] uint8) preprocessed and laid out for `g`. */
export function toInput(pixels: Uint8Array, g: Sized, preprocess: Preprocess, out: Float32Array, offset: number): void {
  const { height, width, channels } = g;
  const plane = height * width;
  for (let k = 0; k < channels; k++) {
    // caffe feeds BGR: output channel k reads RGB channel 2 - k.
    const from = preprocess === 'caffe' ? 2 - k : k;
    for (let p = 0; p < plane; p++) {
      const v = pixels[p * channels + from]!;
      let x: number;
      if (preprocess === 'caffe') x = v - CAFFE_MEAN_BGR[k]!;
      else if (preprocess === 'torch') x = (v / 255 - TORCH_MEAN[k]!) / TORCH_STD[k]!;
      else if (preprocess === 'tf') x = v / 127.5 - 1;
      else if (preprocess === 'unit') x = v / 255;
      else x = v;
      out[offset + (g.layout === 'nchw' ? k * plane + p : p * channels + k)] = x;
    }
  }
}
