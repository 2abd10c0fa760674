/**
 * Hostile input through the real CLI: special files and endless JSON. Each
 * exits 2, fast, with a message naming the file and a fix, and writes nothing.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../dist/shared/formats/index.js';

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

describe('prepare', () => {
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
