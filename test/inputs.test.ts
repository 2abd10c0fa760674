/**
 * Hostile input through the real CLI: special files, endless JSON, edited
 * shard manifests and shard values. Each exits 2, fast, with a message
 * naming the file and a fix, and writes nothing.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeShard, encodeNpy, encodeSafetensors, encodeShard, sha256 } from '../dist/shared/formats/index.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const MLP = join(ROOT, 'examples', 'mlp');
const CNN = join(ROOT, 'examples', 'cnn');
const root = mkdtempSync(join(tmpdir(), 'nc-inputs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The CLI, killed after 30 s: a hang fails the test instead of stalling the run. */
function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  return { status: r.status, stderr: r.stderr, signal: r.signal };
}

let count = 0;
const fresh = (name: string): string => join(root, `${count++}-${name}`);

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
}

/** A shard set prepared from examples/mlp, 10 neurons a shard (20 shards over 3 layers). */
const SHARDS = join(root, 'mlp-shards');
const prepared = cli(['prepare', MLP, SHARDS, '--shard-neurons', '10']);

interface JsonManifest {
  samples: number;
  layers: { name: string; count: number; total: number; start: number; constant: number; shape: number[] }[];
  shards: { file: string; layer: number; first: number; count: number; bytes: number; sha256: string }[];
}

/** A copy of the prepared set with its manifest edited. */
function editedSet(edit: (m: JsonManifest, dir: string) => void): string {
  const dir = fresh('set');
  cpSync(SHARDS, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as JsonManifest;
  edit(manifest, dir);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return dir;
}

/** A copy of the prepared set with shard `index`'s z edited and its size and sha256 made consistent again. */
function editedValues(index: number, edit: (z: Float32Array, m: number) => void, editManifest: (m: JsonManifest) => void = () => undefined): string {
  return editedSet((manifest, dir) => {
    const shard = manifest.shards[index]!;
    const file = join(dir, shard.file);
    const z = Float32Array.from(decodeShard(readFileSync(file), manifest.samples, file).z);
    edit(z, manifest.samples);
    const bytes = encodeShard(shard.first, shard.count, manifest.samples, z, {});
    writeFileSync(file, bytes);
    shard.bytes = bytes.length;
    shard.sha256 = sha256(bytes);
    editManifest(manifest);
  });
}

/** Scores `input` against examples/cnn with --out, and checks: exit 2, the file and a fix named, nothing written. */
function expectRefused(input: string, file: string, message: RegExp, other = CNN): string {
  const out = fresh('report.json');
  const r = cli(['score', input, other, '--out', out, '--no-progress']);
  expect(r.signal, `killed: the CLI hung on ${file}`).toBeNull();
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toContain(`${file}: `);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toMatch(/Fix: /);
  expect(existsSync(out)).toBe(false);
  return r.stderr;
}

describe('special files', () => {
  it('the shard set for these tests prepares', () => {
    expect(prepared.status, prepared.stderr).toBe(0);
  });

  const cases: [string, () => { input: string; file: string }][] = [
    [
      'a .npy layer',
      () => {
        const dir = fresh('npy');
        cpSync(MLP, dir, { recursive: true });
        mkfifo(join(dir, '3_more.npy'));
        return { input: dir, file: join(dir, '3_more.npy') };
      },
    ],
    [
      'layers.json',
      () => {
        const dir = fresh('map');
        cpSync(MLP, dir, { recursive: true });
        mkfifo(join(dir, 'layers.json'));
        return { input: dir, file: join(dir, 'layers.json') };
      },
    ],
    [
      'a .safetensors file',
      () => {
        const file = `${fresh('fifo')}.safetensors`;
        mkfifo(file);
        return { input: file, file };
      },
    ],
    [
      "a shard's .arrow file",
      () => {
        const dir = editedSet(() => undefined);
        const file = join(dir, 'layer0001-00002.arrow');
        rmSync(file);
        mkfifo(file);
        return { input: dir, file };
      },
    ],
    [
      'manifest.json',
      () => {
        const dir = editedSet(() => undefined);
        rmSync(join(dir, 'manifest.json'));
        mkfifo(join(dir, 'manifest.json'));
        return { input: dir, file: join(dir, 'manifest.json') };
      },
    ],
  ];
  it.each(cases)('a FIFO as %s exits 2 before any read (it used to hang)', (_what, make) => {
    const { input, file } = make();
    expectRefused(input, file, /is a FIFO \(named pipe\), not a regular file/);
  });

  const json: [string, (file: string) => void, RegExp][] = [
    ['a symlink to /dev/zero', (file) => symlinkSync('/dev/zero', file), /is a character device, not a regular file/],
    ['a 65 MiB file', (file) => (writeFileSync(file, ''), truncateSync(file, 65 * 2 ** 20)), /is 68157440 bytes, over the limit of 67108864 bytes \(64 MiB\)/],
  ];
  it.each(json)('layers.json as %s exits 2 without reading it (it used to grow to GBs)', (_what, make, message) => {
    const dir = fresh('map');
    cpSync(MLP, dir, { recursive: true });
    make(join(dir, 'layers.json'));
    expectRefused(dir, join(dir, 'layers.json'), message);
  });
  it.each(json)('manifest.json as %s exits 2 without reading it', (_what, make, message) => {
    const dir = editedSet(() => undefined);
    rmSync(join(dir, 'manifest.json'));
    make(join(dir, 'manifest.json'));
    expectRefused(dir, join(dir, 'manifest.json'), message);
  });
});

describe('edited shard manifests', () => {
  const cases: [string, (m: JsonManifest) => void, RegExp][] = [
    [
      'counts of 2e8',
      (m) => {
        m.layers[0]!.count = m.layers[0]!.total = 2e8;
        for (const l of m.layers.slice(1)) l.start += 2e8 - 100;
        m.shards[9]!.count += 2e8 - 100;
        for (const s of m.shards.slice(10)) s.first += 2e8 - 100;
      },
      /layers\[0\] \("0_fc1"\) has shape \[100\], which makes 100 neurons .* but count 200000000/,
    ],
    ['a count of 2^40', (m) => (m.layers[0]!.count = m.layers[0]!.total = 2 ** 40), /count must be an integer in 1\.\.4294967294/],
    [
      'a shard count of 2e8 with its layer shape to match',
      (m) => {
        const grow = 2e8 - 10;
        Object.assign(m.layers[2]!, { count: 40 + grow, total: 40 + grow, shape: [40 + grow] });
        m.shards.at(-1)!.count += grow;
      },
      /shards\[19\] \(layer0002-00003\.arrow\) is \d+ bytes, too small for 200000000 neurons x 64 float32 samples/,
    ],
    ['shards in reverse order', (m) => m.shards.reverse(), /shards\[0\] \(layer0002-00003\.arrow\) starts at neuron 190, expected 0/],
    ['a shard listed twice', (m) => m.shards.splice(1, 0, m.shards[0]!), /shards\[1\] \(layer0000-00000\.arrow\): the file is listed in more than one shard/],
    ['a shard missing', (m) => m.shards.splice(3, 1), /shards\[3\] \(layer0000-00004\.arrow\) starts at neuron 40, expected 30/],
    ['a shard straddling two layers', (m) => (m.shards[9]!.count = 15), /shards\[9\] .* not inside layer 0/],
    ['a shard in the wrong layer', (m) => (m.shards[0]!.layer = 1), /not inside layer 1/],
    ['layers out of order', (m) => m.layers.reverse(), /layers\[0\] \("2_fc3"\) starts at neuron 160, expected 0/],
    ['a shape that disagrees with the count', (m) => (m.layers[1]!.shape = [6, 11]), /has shape \[6, 11\], which makes 66 neurons/],
    ['a constant count over the layer count', (m) => (m.layers[1]!.constant = 61), /constant must be an integer in 0\.\.60/],
    ['a negative first', (m) => (m.shards[0]!.first = -1), /"first" \(an integer >= 0\)/],
    ['a fractional byte count', (m) => (m.shards[0]!.bytes = 1.5), /bytes must be an integer/],
    ['a path in a shard file name', (m) => (m.shards[0]!.file = '../mlp-shards/layer0000-00000.arrow'), /plain file name/],
    ['an absolute shard file name', (m) => (m.shards[0]!.file = join(SHARDS, 'layer0000-00000.arrow')), /plain file name/],
    ['a short sha256', (m) => (m.shards[0]!.sha256 = 'abc'), /sha256 must be 64 hex digits/],
  ];
  it.each(cases)('%s exits 2 naming manifest.json', (_what, edit, message) => {
    const dir = editedSet(edit);
    expectRefused(dir, join(dir, 'manifest.json'), message);
  });
});

describe('shard values', () => {
  const cases: [string, () => string, string, RegExp][] = [
    [
      'an Inf',
      () => editedValues(11, (z, m) => (z[3 * m + 5] = Infinity)),
      'layer0001-00001.arrow',
      /neuron 113 holds a non-finite value \(Infinity at sample 5\)/,
    ],
    ['a NaN', () => editedValues(11, (z, m) => (z[3 * m + 5] = NaN)), 'layer0001-00001.arrow', /neuron 113 holds a non-finite value \(NaN at sample 5\)/],
    [
      'a row of 1e30',
      () => editedValues(2, (z, m) => z.fill(1e30, 4 * m, 5 * m)),
      'layer0000-00002.arrow',
      /neuron 24 has squared norm .*e\+61; a standardized neuron has norm 1/,
    ],
    [
      'a row scaled by 1.01',
      () => editedValues(0, (z, m) => z.subarray(m, 2 * m).forEach((v, t) => (z[m + t] = v * 1.01))),
      'layer0000-00000.arrow',
      /neuron 1 has squared norm 1\.020/,
    ],
    [
      'a row of norm 1 that is not centred (|z|, scaled back to norm 1)',
      () =>
        editedValues(0, (z, m) => {
          const row = z.subarray(m, 2 * m);
          const norm = Math.hypot(...row);
          row.forEach((v, t) => (row[t] = Math.abs(v) / norm));
        }),
      'layer0000-00000.arrow',
      /neuron 1 has mean 0\.\d+ .*a standardized neuron has mean 0/,
    ],
    [
      'a constant count the rows contradict',
      () =>
        editedValues(
          0,
          () => undefined,
          (m) => (m.layers[0]!.constant = 3),
        ),
      'manifest.json',
      /layers\[0\] \("0_fc1"\) declares 3 constant neurons, its shards hold 4/,
    ],
    [
      'a row zeroed without the count',
      () => editedValues(12, (z, m) => z.fill(0, 0, m)),
      'manifest.json',
      /layers\[1\] \("1_fc2"\) declares 1 constant neurons, its shards hold 2/,
    ],
  ];
  it.each(cases)('%s exits 2 naming the file and the neuron', (_what, make, file, message) => {
    const dir = make();
    expectRefused(dir, join(dir, file), message, SHARDS);
  });

  it('an unedited copy scores as before (the checks pass on what prepare writes)', () => {
    const dir = editedValues(5, () => undefined);
    const r = cli(['score', dir, SHARDS, '--no-progress', '--memory', '16MiB']);
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('prepare', () => {
  it('names a NaN neuron by its index in its layer (--shard-neurons 10)', () => {
    const dir = fresh('nan');
    mkdirSync(dir);
    const [m, n] = [8, 30];
    const values = Float32Array.from({ length: m * n }, (_, i) => Math.sin(i * 1.7));
    values[3 * n + 13] = NaN;
    writeFileSync(join(dir, 'fc.npy'), encodeNpy(values, [m, n]));
    const out = fresh('nan-shards');
    const r = cli(['prepare', dir, out, '--shard-neurons', '10']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${join(dir, 'fc.npy')}: neuron 13 of layer "fc" holds a non-finite value (NaN at probe 3)`);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a FIFO as its .safetensors input', () => {
    const file = `${fresh('in')}.safetensors`;
    mkfifo(file);
    const out = fresh('out');
    const r = cli(['prepare', file, out]);
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${file}: is a FIFO`);
    expect(existsSync(out)).toBe(false);
    // encodeSafetensors is the regular-file counterpart, which prepares.
    const good = `${fresh('in')}.safetensors`;
    writeFileSync(good, encodeSafetensors([{ name: 'fc', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => Math.cos(i)) }]));
    expect(cli(['prepare', good, fresh('out')]).status).toBe(0);
  });
});
