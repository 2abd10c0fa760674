import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { loadActivationSet } from '../dist/shared/formats/index.js';
import { type ErrorCode, InputError } from '../dist/shared/errors.js';
import { encodeNpy, parseNpy } from '../dist/shared/formats/index.js';
import { encodeSafetensors, parseSafetensors } from '../dist/shared/formats/index.js';

const root = mkdtempSync(`${tmpdir()}/nc-`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
/** A fresh directory holding `files` (name -> contents). */
function makeDir(files: Record<string, Uint8Array | string> = {}): string {
  const dir = join(root, `d${dirCount++}`);
  mkdirSync(dir);
  for (const [name, contents] of Object.entries(files)) writeFileSync(join(dir, name), contents);
  return dir;
}

function writeFile(name: string, contents: Uint8Array | string): string {
  const file = join(makeDir(), name);
  writeFileSync(file, contents);
  return file;
}

function ramp(n: number, f8 = false): Float32Array | Float64Array {
  const out = f8 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = i * 0.25 - 1;
  return out;
}

function npy(shape: number[], f8 = false): Uint8Array {
  return encodeNpy(
    ramp(
      shape.reduce((a, b) => a * b, 1),
      f8,
    ),
    shape,
  );
}

/** A hand-made .npy with an arbitrary header dict; no padding unless the dict has it. */
function rawNpy(dict: string, payload: Uint8Array, major = 1): Uint8Array {
  const header = new TextEncoder().encode(`${dict}\n`);
  const pre = major === 1 ? 10 : 12;
  const out = new Uint8Array(pre + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, pre);
  out.set(payload, pre + header.length);
  return out;
}

const f4Dict = (shape: string, descr = '<f4', fortran = 'False'): string => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

/** A hand-made .safetensors with an arbitrary header object. */
function rawSafetensors(header: unknown, payload: Uint8Array, claimedLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(claimedLength ?? json.length), true);
  out.set(json, 8);
  out.set(payload, 8 + json.length);
  return out;
}

const bytes = (a: Float32Array | Float64Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

/** Asserts a user-fixable InputError naming `file` and a fix. */
function expectInputError(fn: () => unknown, code: ErrorCode, file: string, pattern?: RegExp): string {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(InputError);
  if (!(err instanceof InputError)) throw err;
  expect(err.code).toBe(code);
  expect(err.exitCode).toBe(2);
  expect(err.file).toBe(file);
  expect(err.message).toContain(file);
  expect(err.message).toContain('Fix');
  if (pattern) expect(err.message).toMatch(pattern);
  return err.message;
}

const parseNpyFile = (file: string) => parseNpy(readFileSync(file), file);
const parseStFile = (file: string) => parseSafetensors(readFileSync(file), file);

// np.save(b, (np.arange(6, dtype='<f4').reshape(2, 3) * 0.5 - 1)) with numpy 2.4
const NUMPY_F4_V1 =
  'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8=';
// np.lib.format.write_array(b, np.array([[1.5, -2.25], [3e300, -0.0]], dtype='<f8'), version=(3, 0))
const NUMPY_F8_V3 =
  'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAALANVgAZi3rUX4AAAAAAAAAgA==';

describe('npy', () => {
  describe.each([false, true])('round trip (f8=%s)', (f8) => {
    it.each([[[5]], [[5, 3]], [[4, 2, 3, 3]]])('shape %j', (shape) => {
      const encoded = npy(shape, f8);
      const headerLen = new DataView(encoded.buffer).getUint16(8, true);
      expect((10 + headerLen) % 64).toBe(0);
      expect(encoded[10 + headerLen - 1]).toBe(0x0a);
      const file = writeFile('a.npy', encoded);
      const parsed = parseNpyFile(file);
      expect(parsed.shape).toEqual(shape);
      expect(parsed.dtype).toBe(f8 ? 'f8' : 'f4');
      expect(parsed.data).toBeInstanceOf(f8 ? Float64Array : Float32Array);
      expect(Array.from(parsed.data)).toEqual(Array.from(ramp(parsed.data.length, f8)));
    });
  });

  it('reads a numpy-written v1 float32 file, and encodeNpy reproduces it byte for byte', () => {
    const file = writeFile('np.npy', Buffer.from(NUMPY_F4_V1, 'base64'));
    const parsed = parseNpyFile(file);
    expect(parsed).toMatchObject({ shape: [2, 3], dtype: 'f4' });
    expect(Array.from(parsed.data)).toEqual([-1, -0.5, 0, 0.5, 1, 1.5]);
    expect(Buffer.from(encodeNpy(parsed.data, parsed.shape))).toEqual(readFileSync(file));
  });

  it('reads a numpy-written v3 float64 file', () => {
    const parsed = parseNpyFile(writeFile('np3.npy', Buffer.from(NUMPY_F8_V3, 'base64')));
    expect(parsed).toMatchObject({ shape: [2, 2], dtype: 'f8' });
    expect(Array.from(parsed.data)).toEqual([1.5, -2.25, 3e300, -0]);
    expect(Object.is(parsed.data[3], -0)).toBe(true);
  });

  it("accepts '=' byte order, v2 headers, scalar and python-2 style shapes", () => {
    const four = bytes(new Float32Array([1, 2, 3, 4]));
    expect(parseNpy(rawNpy(f4Dict('(4,)', '=f4'), four), 'x.npy').shape).toEqual([4]);
    expect(parseNpy(rawNpy(f4Dict('(2L, 2L)'), four, 2), 'x.npy').shape).toEqual([2, 2]);
    expect(parseNpy(rawNpy(f4Dict('()'), four.subarray(0, 4)), 'x.npy').shape).toEqual([]);
  });

  it('returns a view, not a copy, when the data is aligned', () => {
    const encoded = npy([4, 3]);
    expect(parseNpy(encoded, 'x.npy').data.buffer).toBe(encoded.buffer);
  });

  it('copies misaligned data correctly (Uint8Array and Buffer inputs)', () => {
    const encoded = npy([4, 3], true);
    const shifted = new Uint8Array(encoded.length + 1);
    shifted.set(encoded, 1);
    for (const input of [shifted.subarray(1), Buffer.from(shifted.buffer, 1, encoded.length)]) {
      const parsed = parseNpy(input, 'x.npy');
      expect(parsed.data.buffer).not.toBe(shifted.buffer);
      expect(Array.from(parsed.data)).toEqual(Array.from(ramp(12, true)));
    }
  });

  it('reads data whose offset in a real file is misaligned', () => {
    const data = new Float64Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    const encoded = rawNpy(f4Dict('(2, 3)', '<f8'), bytes(data));
    const dataStart = encoded.length - data.byteLength;
    expect(dataStart % 8).not.toBe(0);
    const dir = makeDir({ 'odd.npy': encoded });
    const layer = loadActivationSet(dir).layers[0];
    expect(layer?.shape).toEqual([2, 3]);
    expect(Array.from(layer!.read(0, 2))).toEqual(Array.from(data));
    expect(Array.from(layer!.read(1, 1))).toEqual([0.4, 0.5, 0.6]);
  });

  describe("header parsing: NumPy's rules (a Python dict literal with exactly 'descr', 'fortran_order' and 'shape')", () => {
    const twelve = bytes(ramp(3) as Float32Array);
    const accepted: string[] = [
      '{"descr": "<f4", "fortran_order": False, "shape": (3,)}',
      "{'descr': '<' 'f4', 'fortran_order': False, 'shape': (3,)}",
      "{'descr': u'<f4', 'fortran_order': False, 'shape': (3,)}",
      "{'descr': r'<f4', 'fortran_order': False, 'shape': (3,)}",
      "{'descr': '''<f4''', 'fortran_order': False, 'shape': (3,)}",
      "{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (3,)}",
      "{'descr': '\\u003cf4', 'fortran_order': False, 'shape': ((3),)}",
      "{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
      "{'descr': 'f4', # a comment\n 'fortran_order': False, 'shape': (0b1_1, 0o1, 0x1)}",
      "{'descr': '<f4',\\\n 'fortran_order': False, 'shape': (3 , 1 ,\n) , }  ",
    ];
    it.each(accepted)('accepts %j in format versions 1, 2 and 3', (dict) => {
      for (const major of [1, 2, 3]) expect(parseNpy(rawNpy(dict, twelve, major), 'x.npy').dtype, `v${major}`).toBe('f4');
    });

    const refused: [string, string][] = [
      ['an extra key', "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}"],
      ['a missing key', "{'descr': '<f4', 'fortran_order': False}"],
      ['a bytes key', "{b'descr': '<f4', 'fortran_order': False, 'shape': (3,)}"],
      ['fortran_order 0', "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}"],
      ['a list shape', "{'descr': '<f4', 'fortran_order': False, 'shape': [3]}"],
      ['an int shape', "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}"],
      ['a negative dim', "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}"],
      ['a float dim', "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}"],
      ['a leading zero', "{'descr': '<f4', 'fortran_order': False, 'shape': (03,)}"],
      ['text after the dict', "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x"],
      ['a missing comma', "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}"],
      ['a name', "{'descr': f4, 'fortran_order': False, 'shape': (3,)}"],
      ['a null byte', "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}\0"],
      ['an unterminated string', "{'descr': '<f4, 'fortran_order': False, 'shape': (3,)}"],
      ['a set', "{'descr', 'fortran_order', 'shape'}"],
      ['a Python 2 long in format 3', "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,)}"],
    ];
    it.each(refused)('refuses %s, as NumPy does', (_what, dict) => {
      const file = writeFile('bad.npy', rawNpy(dict, twelve, 3));
      expectInputError(() => parseNpyFile(file), 'E_INPUT_FORMAT', file, /unparsable \.npy header/);
    });

    it("refuses a descr faked inside a string value (it was read as '<f4')", () => {
      const dict = `{'x': "'descr': '<f4', 'fortran_order': False, 'shape': (3,)", 'descr': '|u1', 'fortran_order': False, 'shape': (12,)}`;
      const file = writeFile('fake.npy', rawNpy(dict, twelve));
      expectInputError(() => parseNpyFile(file), 'E_INPUT_FORMAT', file, /unparsable \.npy header.*keys must be exactly 'descr', 'fortran_order', 'shape'/);
    });

    it('refuses a 1.8 MB header of repeated shape keys at once (it took over 60 s), and parses the longest allowed in linear time', { timeout: 10_000 }, () => {
      const started = performance.now();
      const huge = writeFile('huge.npy', rawNpy(`{${"'shape':(".repeat(200_000)}`, twelve, 2));
      expectInputError(() => parseNpyFile(huge), 'E_INPUT_FORMAT', huge, /header is 1800002 bytes long; NumPy refuses headers over 10000 characters/);
      const long = `{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': '${"'shape':(".replace(/'/g, '"').repeat(1100)}'}`;
      expect(long.length).toBeLessThan(10_000);
      const file = writeFile('long.npy', rawNpy(long, twelve, 2));
      expectInputError(() => parseNpyFile(file), 'E_INPUT_FORMAT', file, /keys must be exactly/);
      expect(performance.now() - started).toBeLessThan(2000);
      // rawNpy adds a newline: 10,000 characters in all is the most NumPy reads.
      expect(parseNpy(rawNpy(f4Dict('(3,)').padEnd(9_999), twelve, 2), 'x.npy').shape).toEqual([3]);
      const over = writeFile('over.npy', rawNpy(f4Dict('(3,)').padEnd(10_000), twelve, 2));
      expectInputError(() => parseNpyFile(over), 'E_INPUT_FORMAT', over, /10001 bytes long/);
    });
  });

  describe('errors', () => {
    const payload = bytes(ramp(15));
    const cases: Array<[string, Uint8Array, ErrorCode, RegExp]> = [
      ['bad magic', new TextEncoder().encode('hello, this is not npy'), 'E_INPUT_FORMAT', /\\x93NUMPY/],
      ['unparsable header', rawNpy("{'descr': '<f4', 'fortran_order': False, 'shop': (5, 3), }", payload), 'E_INPUT_FORMAT', /unparsable/],
      ['bad shape', rawNpy(f4Dict('(5, x)'), payload), 'E_INPUT_FORMAT', /unparsable/],
      ['unknown version', rawNpy(f4Dict('(5, 3)'), payload, 4), 'E_INPUT_FORMAT', /version 4/],
      ['big-endian f4', rawNpy(f4Dict('(5, 3)', '>f4'), payload), 'E_INPUT_DTYPE', /big-endian.*astype\('<f4'\)/],
      ['big-endian f8', rawNpy(f4Dict('(5, 3)', '>f8'), payload), 'E_INPUT_DTYPE', /astype\('<f8'\)/],
      ['int32', rawNpy(f4Dict('(5, 3)', '<i4'), payload), 'E_INPUT_DTYPE', /'<i4'.*float32/],
      ['float16', rawNpy(f4Dict('(5, 3)', '<f2'), payload), 'E_INPUT_DTYPE', /'<f2'/],
      ['uint8', rawNpy(f4Dict('(5, 3)', '|u1'), payload), 'E_INPUT_DTYPE', /'\|u1'/],
      ['object', rawNpy(f4Dict('(5, 3)', '|O'), payload), 'E_INPUT_DTYPE', /'\|O'/],
      ['structured', rawNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (15,), }", payload), 'E_INPUT_DTYPE', /structured/],
      ['fortran order', rawNpy(f4Dict('(5, 3)', '<f4', 'True'), payload), 'E_INPUT_FORMAT', /Fortran.*ascontiguousarray/],
      ['short data', npy([5, 3]).subarray(0, 128 + 40), 'E_INPUT_TRUNCATED', /truncated.*60 bytes.*only 40 bytes/],
      [
        'long data',
        rawNpy(f4Dict('(5, 3)'), bytes(ramp(16))),
        'E_INPUT_TRUNCATED',
        /header says shape \[5, 3\] f4 \(60 bytes\) but file holds 64 bytes of data/,
      ],
      ['cut inside the header', npy([5, 3]).subarray(0, 50), 'E_INPUT_TRUNCATED', /truncated.*118-byte header/],
      ['cut inside the preamble', npy([5, 3]).subarray(0, 7), 'E_INPUT_TRUNCATED', /truncated/],
      ['empty file', new Uint8Array(0), 'E_INPUT_TRUNCATED', /truncated/],
    ];
    it.each(cases)('%s', (_label, contents, code, pattern) => {
      const file = writeFile('bad.npy', contents);
      expectInputError(() => parseNpyFile(file), code, file, pattern);
    });
  });
});

describe('safetensors', () => {
  it('round trips f4 and f8 tensors with metadata', () => {
    const a = ramp(15) as Float32Array;
    const b = ramp(72, true);
    const file = writeFile(
      'm.safetensors',
      encodeSafetensors(
        [
          { name: 'a', shape: [5, 3], data: a },
          { name: 'b', shape: [4, 2, 3, 3], data: b },
        ],
        { k: 'v' },
      ),
    );
    const parsed = parseStFile(file);
    expect(parsed.metadata).toEqual({ k: 'v' });
    expect(parsed.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['a', 'f4', [5, 3]],
      ['b', 'f8', [4, 2, 3, 3]],
    ]);
    expect(Array.from(parsed.tensors[0]?.data ?? [])).toEqual(Array.from(a));
    expect(Array.from(parsed.tensors[1]?.data ?? [])).toEqual(Array.from(b));
  });

  it('views aligned tensors and copies misaligned ones', () => {
    const f4 = new Float32Array([1, 2, 3]);
    const f8 = new Float64Array([4, 5]);
    // Header of odd length, so x starts at an odd file offset; y starts 12 bytes after x.
    const makeHeader = (pad: string) => ({
      __metadata__: { pad },
      x: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      y: { dtype: 'F64', shape: [2], data_offsets: [12, 28] },
    });
    const header = JSON.stringify(makeHeader('')).length % 2 === 1 ? makeHeader('') : makeHeader(' ');
    const payload = new Uint8Array(28);
    payload.set(bytes(f4), 0);
    payload.set(bytes(f8), 12);
    const input = rawSafetensors(header, payload);
    const misaligned = parseSafetensors(input, 'x.safetensors');
    expect(misaligned.tensors.map((t) => t.data.buffer === input.buffer)).toEqual([false, false]);
    expect(misaligned.tensors.map((t) => Array.from(t.data))).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);

    const padded = encodeSafetensors([
      { name: 'x', shape: [3], data: f4 },
      { name: 'y', shape: [2], data: f8 },
    ]);
    const aligned = parseSafetensors(padded, 'x.safetensors');
    // x lands on an 8-byte boundary; y 12 bytes later (4- but not 8-aligned).
    expect(aligned.tensors.map((t) => t.data.buffer === padded.buffer)).toEqual([true, false]);
    expect(aligned.tensors.map((t) => Array.from(t.data))).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  describe('errors', () => {
    const good = { t: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] } };
    const payload = bytes(ramp(6));
    const cases: Array<[string, Uint8Array, ErrorCode, RegExp]> = [
      ['shorter than 8 bytes', new Uint8Array(5), 'E_INPUT_TRUNCATED', /truncated/],
      ['header longer than file', rawSafetensors(good, payload, 1000), 'E_INPUT_TRUNCATED', /header claims 1000 bytes but file has only \d+/],
      ['bad JSON', rawSafetensors('x', payload).fill(0x7b, 8, 11), 'E_INPUT_FORMAT', /JSON/],
      ['JSON array', rawSafetensors([1], payload), 'E_INPUT_FORMAT', /not a JSON object/],
      ['malformed entry', rawSafetensors({ t: { dtype: 'F32', shape: [2, 3] } }, payload), 'E_INPUT_FORMAT', /malformed/],
      ['F16', rawSafetensors({ t: { ...good.t, dtype: 'F16' } }, payload), 'E_INPUT_DTYPE', /dtype F16.*F16\/BF16.*float32/],
      ['BF16', rawSafetensors({ t: { ...good.t, dtype: 'BF16' } }, payload), 'E_INPUT_DTYPE', /BF16/],
      ['offsets past the end', rawSafetensors({ t: { ...good.t, data_offsets: [0, 48] } }, payload), 'E_INPUT_TRUNCATED', /truncated.*\[0, 48\].*24 bytes/],
      [
        'header lies about size',
        rawSafetensors({ t: { ...good.t, shape: [2, 2] } }, payload),
        'E_INPUT_TRUNCATED',
        /header says shape \[2, 2\] F32 \(16 bytes\) but its data_offsets span 24 bytes/,
      ],
      ['bad metadata', rawSafetensors({ ...good, __metadata__: { n: 1 } }, payload), 'E_INPUT_FORMAT', /__metadata__/],
      [
        'overlapping tensors',
        rawSafetensors(
          { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } },
          payload.subarray(0, 16),
        ),
        'E_INPUT_FORMAT',
        /tensor "b" \(data_offsets \[8, 16\]\) overlaps tensor "a"/,
      ],
      [
        'a gap between tensors',
        rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, payload),
        'E_INPUT_FORMAT',
        /tensor "b" \(data_offsets \[16, 24\]\) leaves a gap after tensor "a"/,
      ],
      [
        'bytes after the last tensor',
        rawSafetensors({ t: { ...good.t, shape: [2, 2], data_offsets: [0, 16] } }, payload),
        'E_INPUT_FORMAT',
        /holds 24 bytes but tensor "t" ends at 16/,
      ],
    ];
    it.each(cases)('%s', (_label, contents, code, pattern) => {
      const file = writeFile('bad.safetensors', contents);
      expectInputError(() => parseStFile(file), code, file, pattern);
    });
  });
});

describe('loadActivationSet', () => {
  const layer = (m: number, f8 = false) => npy([m, 2, 3], f8);

  it('refuses a missing path', () => {
    const missing = join(root, 'nope');
    expectInputError(() => loadActivationSet(missing), 'E_INPUT_MISSING', missing, /expected a directory of \.npy files or a \.safetensors file/);
  });

  it('refuses a directory without .npy files, and other file types', () => {
    const dir = makeDir({ 'notes.txt': 'hi' });
    expectInputError(() => loadActivationSet(dir), 'E_INPUT_MISSING', dir, /no \.npy files/);
    const txt = join(dir, 'notes.txt');
    expectInputError(() => loadActivationSet(txt), 'E_INPUT_FORMAT', txt, /\.safetensors/);
  });

  it('loads .npy files in code-unit name order, ignoring other files', () => {
    const dir = makeDir({ 'b.npy': layer(4), 'a10.npy': layer(4), 'a2.npy': layer(4, true), 'B.npy': layer(4), 'readme.md': '#' });
    const model = loadActivationSet(dir);
    expect(model.path).toBe(dir);
    expect(model.fingerprint).toBeNull();
    expect(model.layers.map((l) => l.name)).toEqual(['B', 'a10', 'a2', 'b']);
    expect(model.layers.map((l) => [l.depth, l.layout])).toEqual(Array(4).fill([null, null]));
    expect(model.layers[2]).toMatchObject({ source: join(dir, 'a2.npy'), shape: [4, 2, 3] });
    expect(model.layers[2]?.dtype).toBe('f8');
    expect(model.layers[2]?.read(0, 4)).toBeInstanceOf(Float64Array);
  });

  it('applies layers.json: selection, order, renaming, depth, layout, probes', () => {
    const layersJson = {
      probes: 'imagenet-val-1k',
      layers: [
        { file: 'fc.npy', name: 'head', depth: 9, layout: 'nhwc' },
        { file: 'conv1.npy', depth: 0 },
      ],
    };
    const dir = makeDir({ 'conv1.npy': layer(4), 'conv2.npy': layer(4), 'fc.npy': npy([4, 10]), 'layers.json': JSON.stringify(layersJson) });
    const model = loadActivationSet(dir);
    expect(model.fingerprint).toBe('imagenet-val-1k');
    expect(model.layers.map((l) => [l.name, l.depth, l.layout, l.source])).toEqual([
      ['head', 9, 'nhwc', join(dir, 'fc.npy')],
      ['conv1', 0, null, join(dir, 'conv1.npy')],
    ]);
  });

  it('layers.json with only probes keeps every layer', () => {
    const dir = makeDir({ 'a.npy': layer(4), 'b.npy': layer(4), 'layers.json': '{"probes": "p"}' });
    const model = loadActivationSet(dir);
    expect([model.fingerprint, model.layers.map((l) => l.name)]).toEqual(['p', ['a', 'b']]);
  });

  describe('layers.json errors', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['invalid JSON', '{"layers": [', /invalid JSON/],
      ['not an object', [], /JSON object/],
      ['layers not an array', { layers: 'a.npy' }, /non-empty array/],
      ['empty list', { layers: [] }, /non-empty array/],
      ['probes not a string', { probes: 3 }, /probes/],
      ['entry not an object', { layers: ['a.npy'] }, /layers\[0\] must be an object/],
      ['file not a string', { layers: [{ file: 1 }] }, /layers\[0\]\.file/],
      [
        'missing layer',
        { layers: [{ file: 'a.npy' }, { file: 'fc9.npy', name: 'fc9' }] },
        /layers\[1\] \("fc9", file "fc9\.npy"\).*not in the directory; available: a\.npy, b\.npy/,
      ],
      ['empty name', { layers: [{ file: 'a.npy', name: '' }] }, /name must be a non-empty string/],
      ['negative depth', { layers: [{ file: 'a.npy', depth: -1 }] }, /depth must be a non-negative integer, got -1/],
      ['fractional depth', { layers: [{ file: 'a.npy', depth: 1.5 }] }, /depth must be a non-negative integer/],
      ['string depth', { layers: [{ file: 'a.npy', depth: '0' }] }, /depth must be a non-negative integer/],
      ['unknown layout', { layers: [{ file: 'a.npy', layout: 'nwhc' }] }, /layout must be "nchw" or "nhwc", got "nwhc"/],
      ['unknown key', { layers: [{ file: 'a.npy', dpeth: 1 }] }, /unknown key "dpeth"/],
      ['duplicate file', { layers: [{ file: 'a.npy' }, { file: 'a.npy', name: 'x' }] }, /file "a\.npy" appears in more than one entry/],
      ['duplicate name', { layers: [{ file: 'a.npy', name: 'b' }, { file: 'b.npy' }] }, /name "b" appears in more than one entry/],
    ];
    it.each(cases)('%s', (_label, json, pattern) => {
      const contents = typeof json === 'string' ? json : JSON.stringify(json);
      const dir = makeDir({ 'a.npy': layer(4), 'b.npy': layer(4), 'layers.json': contents });
      const message = expectInputError(() => loadActivationSet(dir), 'E_LAYER_MAP', join(dir, 'layers.json'), pattern);
      expect(message).toMatch(/"layers": \[\{"file"/);
    });
  });

  it('refuses empty layers', () => {
    for (const [name, contents] of [
      ['zero.npy', npy([4, 0])],
      ['none.npy', npy([0])],
      ['scalar.npy', npy([])],
    ] as const) {
      const dir = makeDir({ 'a.npy': layer(4), [name]: contents });
      const file = join(dir, name);
      expectInputError(() => loadActivationSet(dir), 'E_INPUT_SHAPE', file, /is empty.*Fix: remove it/);
    }
  });

  it('refuses layers with different M, naming both files', () => {
    const dir = makeDir({ 'a.npy': layer(4), 'b.npy': layer(5) });
    const message = expectInputError(() => loadActivationSet(dir), 'E_INPUT_MISMATCH', join(dir, 'b.npy'), /M=5/);
    expect(message).toContain(join(dir, 'a.npy'));
    expect(message).toContain('M=4');
  });

  it('reports npy errors against the layer file', () => {
    const dir = makeDir({ 'a.npy': layer(4), 'b.npy': layer(4).subarray(0, 140) });
    expectInputError(() => loadActivationSet(dir), 'E_INPUT_TRUNCATED', join(dir, 'b.npy'), /truncated/);
  });

  describe('safetensors', () => {
    const tensors = ['b', 'c', 'a'].map((name) => ({ name, shape: [4, 3], data: ramp(12) }));

    it('uses sorted tensor names without metadata', () => {
      const file = writeFile('m.safetensors', encodeSafetensors(tensors));
      const model = loadActivationSet(file);
      expect(model.fingerprint).toBeNull();
      expect(model.layers.map((l) => [l.name, l.depth, l.source])).toEqual(['a', 'b', 'c'].map((n) => [n, null, `${file}#${n}`]));
    });

    it('selects and orders layers from __metadata__', () => {
      const metadata = { layers: '["c","a"]', depths: '[3, 7]', probe_fingerprint: 'fp1' };
      const file = writeFile('m.safetensors', encodeSafetensors(tensors, metadata));
      const model = loadActivationSet(file);
      expect(model.fingerprint).toBe('fp1');
      expect(model.layers.map((l) => [l.name, l.depth, l.layout])).toEqual([
        ['c', 3, null],
        ['a', 7, null],
      ]);
    });

    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['unknown tensor', { layers: '["a","zz"]' }, /names tensor "zz", which is not in the file; available: a, b, c/],
      ['layers not JSON', { layers: 'a,b' }, /__metadata__\.layers must be a JSON array string/],
      ['layers not names', { layers: '[1]' }, /non-empty JSON array of tensor names/],
      ['duplicate layer', { layers: '["a","a"]' }, /"a" more than once/],
      ['depths wrong length', { layers: '["a","b"]', depths: '[1]' }, /depths must be a JSON array of 2 non-negative integers/],
      ['negative depth', { depths: '[0, 1, -2]' }, /depths must be/],
    ];
    it.each(cases)('refuses bad metadata: %s', (_label, metadata, pattern) => {
      const file = writeFile('m.safetensors', encodeSafetensors(tensors, metadata));
      expectInputError(() => loadActivationSet(file), 'E_LAYER_MAP', file, pattern);
    });

    it('refuses an empty tensor and mismatched M, naming file#tensor', () => {
      const empty = writeFile('e.safetensors', encodeSafetensors([...tensors, { name: 'd', shape: [4, 0], data: new Float32Array(0) }]));
      expectInputError(() => loadActivationSet(empty), 'E_INPUT_SHAPE', `${empty}#d`, /empty/);
      const mism = writeFile('m.safetensors', encodeSafetensors([...tensors, { name: 'd', shape: [3, 4], data: ramp(12) }]));
      expectInputError(() => loadActivationSet(mism), 'E_INPUT_MISMATCH', `${mism}#d`, /M=3.*#a has M=4/);
    });

    it('refuses a file without tensors', () => {
      const file = writeFile('none.safetensors', encodeSafetensors([]));
      expectInputError(() => loadActivationSet(file), 'E_INPUT_MISSING', file, /no tensors/);
    });
  });
});
