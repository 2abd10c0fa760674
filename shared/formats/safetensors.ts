/**
 * .safetensors reading and writing, F32/F64 only. Layout: u64 little-endian
 * header length N, N bytes of UTF-8 JSON, then the data; each tensor's
 * data_offsets are relative to the first byte after the header.
 */

import { InputError, InternalError } from '../errors.js';
import { type FloatArray, type FloatDtype, ITEMSIZE, bytesOf, dtypeOf, floatArrayAt, formatShape, shapeSize } from './npy.js';
import { jsonSyntax } from './input-file.js';

export interface SafetensorsTensor {
  name: string;
  shape: number[];
  dtype: FloatDtype;
  data: FloatArray;
}

export interface SafetensorsFile {
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DTYPES = new Map<string, FloatDtype>([
  ['F32', 'f4'],
  ['F64', 'f8'],
]);
const NAMES: Readonly<Record<FloatDtype, string>> = { f4: 'F32', f8: 'F64' };
const RESAVE_FIX = 'the file is incomplete or corrupt; re-export it with safetensors save_file()';
const METADATA = '__metadata__';

export interface SafetensorsEntry {
  name: string;
  shape: number[];
  dtype: FloatDtype;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
}

export interface SafetensorsHeader {
  tensors: SafetensorsEntry[];
  metadata: Record<string, string>;
}

/** The safetensors library refuses longer headers (its MAX_HEADER_SIZE). */
export const MAX_SAFETENSORS_HEADER = 100_000_000;

/** Bytes of the file needed to parse its header (8-byte length prefix + JSON), or null if `prefix` is too short to say; capped, since longer headers are refused. */
export function safetensorsHeaderLength(prefix: Uint8Array): number | null {
  if (prefix.length < 8) return null;
  const claimed = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  return 8 + Number(claimed > BigInt(MAX_SAFETENSORS_HEADER) ? BigInt(MAX_SAFETENSORS_HEADER + 1) : claimed);
}

/** Parses the header from the file's first bytes and checks every tensor against the file's size. */
export function parseSafetensorsHeader(head: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const truncated = (problem: string): InputError => new InputError('E_INPUT_TRUNCATED', file, problem, RESAVE_FIX);
  if (fileSize < 8) throw truncated(`file is truncated: ${fileSize} bytes, too short for the 8-byte header length`);
  const dataStart = safetensorsHeaderLength(head)!;
  if (dataStart - 8 > MAX_SAFETENSORS_HEADER) {
    const problem = `header is over ${MAX_SAFETENSORS_HEADER} bytes, the most the safetensors format allows`;
    throw new InputError('E_INPUT_FORMAT', file, problem, RESAVE_FIX);
  }
  if (dataStart > fileSize) {
    throw truncated(`header claims ${dataStart - 8} bytes but file has only ${fileSize - 8} after the length prefix`);
  }
  const header = parseHeaderJson(head.subarray(8, dataStart), file);
  const dataLen = fileSize - dataStart;
  const entries = Object.entries(header)
    .filter(([name]) => name !== METADATA)
    .map(([name, entry]) => ({ name, ...parseEntry(name, entry, dataLen, file) }));
  checkTiling(entries, dataLen, file);
  const tensors = entries.map(({ name, dtype, shape, begin }) => ({ name, shape, dtype, offset: dataStart + begin }));
  return { tensors, metadata: parseMetadata(header[METADATA], file) };
}

/** The safetensors format requires the tensors, in the order of their offsets, to fill the data section exactly. */
function checkTiling(entries: readonly { name: string; begin: number; end: number }[], dataLen: number, file: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let previous: string | null = null;
  for (const { name, begin, end } of sorted) {
    if (begin !== at) {
      const where = previous === null ? 'the start of the data section' : `tensor "${previous}" (which ends at ${at})`;
      const problem = `tensor "${name}" (data_offsets [${begin}, ${end}]) ${begin < at ? 'overlaps' : 'leaves a gap after'} ${where}`;
      throw new InputError('E_INPUT_FORMAT', file, problem, RESAVE_FIX);
    }
    at = end;
    previous = name;
  }
  if (at !== dataLen) {
    const after = previous === null ? 'no tensor' : `tensor "${previous}" ends at ${at}`;
    throw new InputError('E_INPUT_FORMAT', file, `the data section holds ${dataLen} bytes but ${after}: tensors must fill it exactly`, RESAVE_FIX);
  }
}

export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const { tensors, metadata } = parseSafetensorsHeader(bytes, bytes.length, file);
  return {
    tensors: tensors.map(({ name, shape, dtype, offset }) => ({ name, shape, dtype, data: floatArrayAt(bytes, offset, shapeSize(shape), dtype) })),
    metadata,
  };
}

function parseHeaderJson(bytes: Uint8Array, file: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    const problem = `header is not valid UTF-8 JSON (${err instanceof TypeError ? 'not UTF-8' : jsonSyntax(err)})`;
    throw new InputError('E_INPUT_FORMAT', file, problem, RESAVE_FIX, { cause: err });
  }
  if (!isRecord(header)) throw new InputError('E_INPUT_FORMAT', file, 'header is not a JSON object', RESAVE_FIX);
  return header;
}

const isDim = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseEntry(name: string, entry: unknown, dataLen: number, file: string): { dtype: FloatDtype; shape: number[]; begin: number; end: number } {
  const dtypeName = isRecord(entry) ? entry['dtype'] : undefined;
  const shape = isRecord(entry) ? entry['shape'] : undefined;
  const offsets = isRecord(entry) ? entry['data_offsets'] : undefined;
  const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? offsets : [];
  if (typeof dtypeName !== 'string' || !Array.isArray(shape) || !shape.every(isDim) || !isDim(begin) || !isDim(end)) {
    const problem = `tensor "${name}" has a malformed header entry ${JSON.stringify(entry)}`;
    throw new InputError('E_INPUT_FORMAT', file, problem, RESAVE_FIX);
  }
  const dtype = DTYPES.get(dtypeName);
  if (!dtype) {
    const problem = `tensor "${name}" has dtype ${dtypeName}; only F32 and F64 are supported`;
    const fix = 'F16/BF16 (and other dtypes) must be converted to float32 before saving, e.g. save_file({k: v.float() for k, v in tensors.items()}, path)';
    throw new InputError('E_INPUT_DTYPE', file, problem, fix);
  }
  if (end < begin || end > dataLen) {
    const problem = `file is truncated: tensor "${name}" has data_offsets [${begin}, ${end}] but the data section holds ${dataLen} bytes`;
    throw new InputError('E_INPUT_TRUNCATED', file, problem, RESAVE_FIX);
  }
  const expected = shapeSize(shape) * ITEMSIZE[dtype];
  if (end - begin !== expected) {
    const problem = `tensor "${name}": header says shape ${formatShape(shape)} ${dtypeName} (${expected} bytes) but its data_offsets span ${end - begin} bytes`;
    throw new InputError('E_INPUT_TRUNCATED', file, problem, RESAVE_FIX);
  }
  return { dtype, shape, begin, end };
}

function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (raw === undefined) return {};
  if (!isStringRecord(raw)) throw new InputError('E_INPUT_FORMAT', file, '__metadata__ must map strings to strings', RESAVE_FIX);
  return raw;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}

export interface TensorToEncode {
  name: string;
  shape: readonly number[];
  data: FloatArray;
}

/** Tensors stored back to back in the given order; header padded to 8 bytes. */
export function encodeSafetensors(tensors: readonly TensorToEncode[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { [METADATA]: metadata } : {};
  let offset = 0;
  for (const { name, shape, data } of tensors) {
    if (shapeSize(shape) !== data.length) {
      throw new InternalError(`encodeSafetensors: "${name}" shape ${formatShape(shape)} needs ${shapeSize(shape)} values, got ${data.length}`);
    }
    header[name] = { dtype: NAMES[dtypeOf(data)], shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset).fill(0x20, 8, 8 + headerLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  offset = 8 + headerLen;
  for (const { data } of tensors) {
    out.set(bytesOf(data), offset);
    offset += data.byteLength;
  }
  return out;
}
