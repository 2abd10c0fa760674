/**
 * IDX image files (MNIST's format: a header of dimensions, then unsigned
 * bytes), plain or gzipped, read as a stream: the header is checked first,
 * and no more bytes are inflated than it declares (a small .gz can inflate
 * to gigabytes), nor more held than the probes asked for.
 */
import { createReadStream } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputError } from '../shared/errors.js';
import { readHead } from '../shared/formats/index.js';

/** The most bytes of images an IDX file may declare: 4 GiB, as much as one buffer holds. */
export const MAX_IDX_BYTES = 2 ** 32;

export const IDX_FIX = 'pass an IDX image file of unsigned bytes (MNIST format: [N, rows, cols] or [N, rows, cols, channels]), gzipped or not';

export interface IdxImages {
  /** Images in the file. */
  readonly n: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** The first `count` images, count x height x width x channels bytes. */
  readonly pixels: Uint8Array;
  readonly count: number;
}

/** The file's header and its first `limit` images (all when null); `fail` makes the error for a problem with the file. */
export async function readIdx(file: string, limit: number | null, fail: (problem: string) => InputError): Promise<IdxImages> {
  const { head } = readHead(file, 2);
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  const source = createReadStream(file);
  const stream: Readable = gzipped ? pipeline(source, createGunzip(), () => undefined) : source;
  let header: Uint8Array = new Uint8Array(0);
  let parsed: { dims: number[]; declared: number; start: number } | null = null;
  let images: Omit<IdxImages, 'pixels'> | null = null;
  let pixels = new Uint8Array(0);
  let total = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (parsed === null) {
        header = concat(header, chunk.subarray(0, Math.max(0, 20 - header.length)));
        parsed = parseHeader(header, fail);
        if (parsed === null) continue;
        const [n, height, width] = parsed.dims as [number, number, number];
        const channels = parsed.dims[3] ?? 1;
        const count = limit === null ? n : Math.min(limit, n);
        images = { n, height, width, channels, count };
        pixels = new Uint8Array(count * height * width * channels);
      }
      if (total > parsed.start + parsed.declared) {
        throw fail(
          `${gzipped ? 'inflates to more than' : 'holds more than'} the ${parsed.declared} bytes of images its header [${parsed.dims.join(', ')}] declares`,
        );
      }
      // Bytes [total - chunk.length, total) of the file; pixels start at `parsed.start`.
      const at = total - chunk.length - parsed.start;
      const from = Math.max(0, -at);
      if (at + from < pixels.length) pixels.set(chunk.subarray(from, from + pixels.length - (at + from)), at + from);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw fail(gzipped ? 'is gzipped but does not decompress' : `cannot be read (${String(err)})`);
  } finally {
    stream.destroy();
  }
  if (parsed === null || images === null) throw fail(header.length < 4 ? 'is not a folder of images, a .npy or an IDX file' : 'ends inside its header');
  const held = total - parsed.start;
  if (held !== parsed.declared) throw fail(`holds ${held} bytes of data; its header [${parsed.dims.join(', ')}] says ${parsed.declared}`);
  return { ...images, pixels };
}

/** The dimensions, data bytes declared and where data starts, once `header` holds the whole header; null before. */
function parseHeader(header: Uint8Array, fail: (problem: string) => InputError): { dims: number[]; declared: number; start: number } | null {
  if (header.length < 4) return null;
  if (header[0] !== 0 || header[1] !== 0) throw fail('is not a folder of images, a .npy or an IDX file');
  const [type, rank] = [header[2]!, header[3]!];
  if (type !== 0x08) throw fail(`is an IDX file of type 0x${type.toString(16)}; only unsigned bytes (0x08) are images`);
  if (rank !== 3 && rank !== 4) throw fail(`is an IDX file of rank ${rank} (labels?); images have rank 3 or 4`);
  const start = 4 + 4 * rank;
  if (header.length < start) return null;
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const channels = dims[3] ?? 1;
  if (channels !== 1 && channels !== 3) throw fail(`has ${channels} channels; images have 1 or 3`);
  const declared = dims.reduce((a, b) => a * b, 1);
  if (declared > MAX_IDX_BYTES) throw fail(`its header [${dims.join(', ')}] declares ${declared} bytes of images, over the ${MAX_IDX_BYTES} extract reads`);
  if (dims[0] === 0) throw fail('holds no images');
  return { dims, declared, start };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
