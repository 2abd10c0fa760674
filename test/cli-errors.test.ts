/** Bad input through the real CLI: exit code 2, a message naming the file and the fix, and no output file. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpy } from '../dist/shared/formats/index.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A .npy written by hand, so headers can lie. */
function rawNpy(descr: string, fortran: boolean, shape: number[], data: Uint8Array): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  const header = `${dict}${' '.repeat(pad % 64)}\n`;
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(data, 10 + header.length);
  return out;
}

const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
const random = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) + (i % 3));

function modelDir(layers: Record<string, Uint8Array>, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'nc-bad-'));
  for (const [name, bytes] of Object.entries(layers)) writeFileSync(join(dir, name), bytes);
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

const good = (m = 6, n = 4, seed = 1) => encodeNpy(Float32Array.from(random(m * n, seed)), [m, n]);
const goodDir = modelDir({ 'a.npy': good(), 'b.npy': good(6, 3, 2) });

interface BadCase {
  readonly name: string;
  readonly dir: () => string;
  /** Text the message must hold (besides the file and "Fix"). */
  readonly expect: RegExp;
  readonly file: string;
}

const CASES: BadCase[] = [
  { name: 'mismatched M between models', dir: () => modelDir({ 'a.npy': good(7, 4) }), expect: /7 probes .* 6|6 probes .* 7/, file: '' },
  { name: 'mismatched M between layers', dir: () => modelDir({ 'a.npy': good(6, 4), 'b.npy': good(5, 4) }), expect: /5|6/, file: 'b.npy' },
  {
    name: 'NaN',
    dir: () => modelDir({ 'a.npy': encodeNpy(Float32Array.from([...random(10, 3), Number.NaN, ...random(13, 4)]), [6, 4]) }),
    expect: /NaN/,
    file: 'a.npy',
  },
  {
    name: 'Inf',
    dir: () => modelDir({ 'a.npy': encodeNpy(Float64Array.from([...random(5, 3), Number.POSITIVE_INFINITY, ...random(18, 4)]), [6, 4]) }),
    expect: /Infinity|Inf/,
    file: 'a.npy',
  },
  { name: 'truncated file', dir: () => modelDir({ 'a.npy': good().subarray(0, good().length - 10) }), expect: /truncat|short|bytes/i, file: 'a.npy' },
  {
    name: 'header that lies about its size',
    dir: () => modelDir({ 'a.npy': rawNpy('<f4', false, [6, 4], f32(random(30, 5))) }),
    expect: /bytes/,
    file: 'a.npy',
  },
  { name: 'unsupported dtype', dir: () => modelDir({ 'a.npy': rawNpy('<i4', false, [6, 4], new Uint8Array(96)) }), expect: /<i4|dtype/, file: 'a.npy' },
  { name: 'big-endian array', dir: () => modelDir({ 'a.npy': rawNpy('>f4', false, [6, 4], new Uint8Array(96)) }), expect: /big-endian|>f4/i, file: 'a.npy' },
  { name: 'Fortran-order array', dir: () => modelDir({ 'a.npy': rawNpy('<f4', true, [6, 4], f32(random(24, 6))) }), expect: /fortran/i, file: 'a.npy' },
  { name: 'empty layer', dir: () => modelDir({ 'a.npy': good(), 'b.npy': rawNpy('<f4', false, [6, 0], new Uint8Array(0)) }), expect: /empty|0/, file: 'b.npy' },
  { name: 'missing directory', dir: () => join(tmpdir(), 'nc-does-not-exist', 'model'), expect: /not exist|no such|missing/i, file: '' },
  {
    name: 'layers.json naming a layer that does not exist',
    dir: () => modelDir({ 'a.npy': good() }, { 'layers.json': JSON.stringify({ layers: [{ file: 'a.npy' }, { file: 'ghost.npy' }] }) }),
    expect: /ghost/,
    file: 'layers.json',
  },
];

describe('bad input exits 2, names the file and the fix, and writes nothing', () => {
  // Each bad set is tried as G and as F: F is standardized while the first tiles already run.
  it.each(CASES.flatMap((c) => [[`${c.name} (as G)`, c, 'G'] as const, [`${c.name} (as F)`, c, 'F'] as const]))('%s', (_name, c, side) => {
    const dir = c.dir();
    const outDir = mkdtempSync(join(tmpdir(), 'nc-out-'));
    const out = join(outDir, 'report.json');
    const matches = join(outDir, 'matches.csv');
    const pair = side === 'G' ? [goodDir, dir] : [dir, goodDir];
    const r = cli(['score', ...pair, '--out', out, '--matches', matches, '--json']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(c.expect);
    expect(r.stderr).toContain(c.file ? join(dir, c.file) : dir);
    expect(r.stderr).toMatch(/Fix/);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(matches)).toBe(false);
  });

  it('bad usage exits 2 too', () => {
    expect(cli(['score', goodDir]).status).toBe(2);
    expect(cli(['score', goodDir, goodDir, '--threads', 'zero']).status).toBe(2);
    expect(cli(['score', goodDir, goodDir, '--match', 'best']).status).toBe(2);
    const r = cli(['score', goodDir, goodDir, '--out', join(tmpdir(), 'nc-no-such-dir', 'r.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/does not exist/);
  });
});

describe('the CLI happy path', () => {
  it('--json prints only the report on stdout, and --out/--matches write files', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'nc-out-'));
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, 'report.json');
    const matches = join(outDir, 'matches.csv');
    const r = cli(['score', goodDir, goodDir, '--json', '--out', out, '--matches', matches, '--kernel', 'reference']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { scores: { paper: { symmetric: number } }; neurons: number[]; partial: boolean; kernel: string; tiles: number };
    // A model against itself: every neuron finds itself at |rho| = 1 and the same depth.
    expect(report.scores.paper.symmetric).toBeCloseTo(1, 6);
    expect(report.neurons).toEqual([7, 7]);
    expect(report.partial).toBe(false);
    expect(report.kernel).toBe('reference');
    expect(existsSync(out)).toBe(true);
    expect(existsSync(matches)).toBe(true);
  });
});
