/**
 * NumPy .npy reading and writing (format versions 1-3), float32/float64,
 * little-endian, C order only. Pure bytes <-> arrays; no file system access.
 * Also home of the typed-array helpers that safetensors.ts shares.
 */

import { InputError, InternalError } from '../errors.js';
import { parsePyLiteral, PySyntaxError, type PyValue } from './py-literal.js';

export type FloatDtype = 'f4' | 'f8';
export type FloatArray = Float32Array | Float64Array;

export interface NdArray {
  shape: number[];
  dtype: FloatDtype;
  data: FloatArray;
}

export const ITEMSIZE: Readonly<Record<FloatDtype, number>> = { f4: 4, f8: 8 };

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

// Typed arrays use host byte order; both formats store little-endian.
const HOST_IS_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndianHost(): void {
  if (!HOST_IS_LE) throw new InternalError('neurocorr needs a little-endian host');
}

/**
 * `count` items of `dtype` at `bytes[offset...]`. A view (no copy) when the
 * absolute byte offset is a multiple of the item size, as typed arrays require;
 * otherwise a copy.
 */
export function floatArrayAt(bytes: Uint8Array, offset: number, count: number, dtype: FloatDtype): FloatArray {
  assertLittleEndianHost();
  const start = bytes.byteOffset + offset;
  const aligned = start % ITEMSIZE[dtype] === 0;
  // Not bytes.slice(): on a Buffer that is a view, not a copy.
  const buffer = aligned ? bytes.buffer : new Uint8Array(bytes.subarray(offset, offset + count * ITEMSIZE[dtype])).buffer;
  const at = aligned ? start : 0;
  return dtype === 'f4' ? new Float32Array(buffer, at, count) : new Float64Array(buffer, at, count);
}

/** The raw (little-endian) bytes of `data`, for the encoders. */
export function bytesOf(data: FloatArray): Uint8Array {
  assertLittleEndianHost();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function dtypeOf(data: FloatArray): FloatDtype {
  return data.BYTES_PER_ELEMENT === 4 ? 'f4' : 'f8';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const SAVE_FIX = 'save the array with numpy: np.save(path, np.ascontiguousarray(a, dtype=np.float32))';
const RESAVE_FIX = 'the file is incomplete or corrupt; re-export it with np.save(path, a)';
// Without a byte-order character NumPy reads native order (little-endian here).
const DTYPES = new Map<string, FloatDtype>([
  ['<f4', 'f4'],
  ['=f4', 'f4'],
  ['f4', 'f4'],
  ['<f8', 'f8'],
  ['=f8', 'f8'],
  ['f8', 'f8'],
]);

export interface NpyHeader {
  shape: number[];
  dtype: FloatDtype;
  /** Byte offset of the data in the file. */
  dataOffset: number;
}

/**
 * Parses the header from the first bytes of a file (`head`, holding at least
 * the preamble and header) and checks it against the whole file's size.
 */
export function parseNpyHeader(head: Uint8Array, fileSize: number, file: string): NpyHeader {
  const { header, dataStart, major } = readPreamble(head, fileSize, file);
  const { dtype, shape } = parseHeader(header, major, file);
  const expected = shapeSize(shape) * ITEMSIZE[dtype];
  const actual = fileSize - dataStart;
  if (actual < expected) {
    const problem = `file is truncated: header says shape ${formatShape(shape)} ${dtype} (${expected} bytes) but file holds only ${actual} bytes of data`;
    throw new InputError('E_INPUT_TRUNCATED', file, problem, RESAVE_FIX);
  }
  if (actual > expected) {
    const problem = `header says shape ${formatShape(shape)} ${dtype} (${expected} bytes) but file holds ${actual} bytes of data`;
    throw new InputError('E_INPUT_TRUNCATED', file, problem, RESAVE_FIX);
  }
  return { shape, dtype, dataOffset: dataStart };
}

/** NumPy's np.load refuses longer headers (its `max_header_size`) unless told the file is trusted. */
export const MAX_NPY_HEADER = 10000;
// Header bytes that can decode to MAX_NPY_HEADER characters: UTF-8 (format 3) takes up to 4 bytes a character.
const maxHeaderBytes = (major: number): number => (major === 3 ? 4 : 1) * MAX_NPY_HEADER;

/** Bytes of the file needed to parse its header: the preamble, then the length it declares (capped: longer headers are refused). */
export function npyHeaderLength(preamble: Uint8Array): number | null {
  if (preamble.length < 12) return null;
  const view = new DataView(preamble.buffer, preamble.byteOffset, preamble.byteLength);
  const major = preamble[6]!;
  const headerStart = major === 1 ? 10 : 12;
  const declared = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  return headerStart + Math.min(declared, maxHeaderBytes(major) + 1);
}

export function parseNpy(bytes: Uint8Array, file: string): NdArray {
  const { shape, dtype, dataOffset } = parseNpyHeader(bytes, bytes.length, file);
  return { shape, dtype, data: floatArrayAt(bytes, dataOffset, shapeSize(shape), dtype) };
}

function readPreamble(bytes: Uint8Array, fileSize: number, file: string): { header: string; dataStart: number; major: number } {
  if (!MAGIC.every((b, i) => i >= bytes.length || bytes[i] === b)) {
    throw new InputError('E_INPUT_FORMAT', file, 'not a .npy file (no \\x93NUMPY magic)', SAVE_FIX);
  }
  const truncated = (what: string): InputError =>
    new InputError('E_INPUT_TRUNCATED', file, `file is truncated: ${fileSize} bytes, shorter than ${what}`, RESAVE_FIX);
  if (fileSize < 10) throw truncated('the .npy preamble');
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3) {
    throw new InputError('E_INPUT_FORMAT', file, `unsupported .npy format version ${major}`, SAVE_FIX);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  if (fileSize < headerStart) throw truncated('the .npy preamble');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const tooLong = (length: number, unit: string): InputError =>
    new InputError(
      'E_INPUT_FORMAT',
      file,
      `the .npy header is ${length} ${unit} long; NumPy refuses headers over ${MAX_NPY_HEADER} characters (np.load's max_header_size) as unsafe to parse`,
      SAVE_FIX,
    );
  if (headerLength > maxHeaderBytes(major)) throw tooLong(headerLength, 'bytes');
  const dataStart = headerStart + headerLength;
  if (fileSize < dataStart) throw truncated(`the ${headerLength}-byte header it declares`);
  if (bytes.length < dataStart) throw new InternalError(`${file}: header parsed from ${bytes.length} bytes, needs ${dataStart}`);
  const raw = bytes.subarray(headerStart, dataStart);
  let header: string;
  try {
    header = major === 3 ? new TextDecoder('utf-8', { fatal: true }).decode(raw) : latin1(raw);
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, 'the .npy header is not valid UTF-8', SAVE_FIX, { cause: err });
  }
  if (header.length > MAX_NPY_HEADER) throw tooLong(header.length, 'characters');
  return { header, dataStart, major };
}

/** Python's latin-1: one character per byte (TextDecoder's 'latin1' is windows-1252). */
function latin1(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4096) out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return out;
}

const KEYS = ['descr', 'fortran_order', 'shape'];

/** The header dict, checked as numpy/lib/format.py checks it: exactly the keys descr, fortran_order and shape. */
function parseHeader(raw: string, major: number, file: string): { dtype: FloatDtype; shape: number[] } {
  const unparsable = (why: string): InputError =>
    new InputError('E_INPUT_FORMAT', file, `unparsable .npy header ${JSON.stringify(raw.trim().slice(0, 200))}: ${why}`, SAVE_FIX);
  let dict: PyValue;
  try {
    dict = parsePyLiteral(raw, major !== 3);
  } catch (err) {
    if (err instanceof PySyntaxError) throw unparsable(`not a Python literal (${err.message})`);
    throw err;
  }
  if (dict.kind !== 'dict') throw unparsable('not a dict');
  // As in a Python dict literal, a repeated key keeps its last value.
  const values = new Map<string, PyValue>();
  for (const [key, value] of dict.entries) {
    if (key.kind !== 'str' || !KEYS.includes(key.value)) throw unparsable(`keys must be exactly ${KEYS.map((k) => `'${k}'`).join(', ')}`);
    values.set(key.value, value);
  }
  const descr = values.get('descr');
  const fortran = values.get('fortran_order');
  const shape = values.get('shape');
  if (descr === undefined || fortran === undefined || shape === undefined) throw unparsable(`keys must be exactly ${KEYS.map((k) => `'${k}'`).join(', ')}`);
  if (shape.kind !== 'tuple' || !shape.items.every((d) => d.kind === 'int' && Number.isSafeInteger(d.value) && d.value >= 0)) {
    throw unparsable("'shape' must be a tuple of non-negative integers");
  }
  if (fortran.kind !== 'bool') throw unparsable("'fortran_order' must be True or False");
  if (descr.kind === 'list') {
    const problem = 'array has a structured (record) dtype; only float32 and float64 are supported';
    throw new InputError('E_INPUT_DTYPE', file, problem, 'save one plain float32 array per layer');
  }
  if (descr.kind !== 'str') {
    throw new InputError('E_INPUT_DTYPE', file, `array has a ${descr.kind} 'descr'; only float32 ('<f4') and float64 ('<f8') are supported`, SAVE_FIX);
  }
  const dtype = parseDescr(descr.value, file);
  if (fortran.value) {
    const problem = 'array is stored in Fortran (column-major) order; only C order is supported';
    throw new InputError('E_INPUT_FORMAT', file, problem, 'save a C-ordered copy: np.save(path, np.ascontiguousarray(a))');
  }
  return { dtype, shape: shape.items.map((d) => (d.kind === 'int' ? d.value : 0)) };
}

function parseDescr(descr: string, file: string): FloatDtype {
  const dtype = DTYPES.get(descr);
  if (dtype) return dtype;
  if (descr === '>f4' || descr === '>f8') {
    const fix = `convert to little-endian: np.save(path, a.astype('<${descr.slice(1)}'))`;
    throw new InputError('E_INPUT_DTYPE', file, `array is big-endian ('${descr}'); only little-endian is supported`, fix);
  }
  const problem = `unsupported dtype '${descr}'; only float32 ('<f4') and float64 ('<f8') are supported`;
  throw new InputError('E_INPUT_DTYPE', file, problem, "convert to float32: np.save(path, a.astype('<f4'))");
}

/** A version 1 .npy: little-endian, C order, data starting at a multiple of 64 bytes. */
export function encodeNpy(data: FloatArray, shape: readonly number[]): Uint8Array {
  if (shapeSize(shape) !== data.length) {
    throw new InternalError(`encodeNpy: shape ${formatShape(shape)} needs ${shapeSize(shape)} values, got ${data.length}`);
  }
  const header = npyHeader(shape, dtypeOf(data));
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header);
  out.set(bytesOf(data), header.length);
  return out;
}

/** The preamble and header of a version 1 .npy, padded so the data starts at a multiple of 64 bytes. */
export function npyHeader(shape: readonly number[], dtype: FloatDtype): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '<${dtype}', 'fortran_order': False, 'shape': (${dims}), }`;
  const headerLen = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const out = new Uint8Array(10 + headerLen);
  out.set(MAGIC);
  out[6] = 1;
  new DataView(out.buffer).setUint16(8, headerLen, true);
  out.set(new TextEncoder().encode(`${dict.padEnd(headerLen - 1)}\n`), 10);
  return out;
}
