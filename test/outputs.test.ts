/** Outputs are safe and never half-written, through the real CLI: --force, outputs against inputs, outputs that are not files, signals and stale temps, the threads cap. */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');

function cli(args: string[], cwd?: string) {
  // NEUROCORR_TRACE logs each phase of a score: no `trace:` line means it stopped before any compute.
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd, env: { ...process.env, NEUROCORR_TRACE: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A refusal: exit 2, one error line saying why, no stack, nothing computed. */
function refused(r: ReturnType<typeof cli>, why: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(why);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(r.stderr).not.toMatch(/trace:/);
}

const scratches: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'nc-outputs-'));
  scratches.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of scratches) rmSync(dir, { recursive: true, force: true });
});

/** A folder with copies of both example models (tests may try to overwrite them). */
function models(): { dir: string; f: string; g: string } {
  const dir = scratch();
  cpSync(join(ROOT, 'examples', 'mlp'), join(dir, 'mlp'), { recursive: true });
  cpSync(join(ROOT, 'examples', 'cnn'), join(dir, 'cnn'), { recursive: true });
  return { dir, f: join(dir, 'mlp'), g: join(dir, 'cnn') };
}

const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((p) => [p, statSync(join(dir, p)).isFile() ? readFileSync(join(dir, p), 'hex') : 'dir']),
  );

describe('--force replaces only a previous set (1)', () => {
  it('prepare IN ANCESTOR-OF-IN --force refuses, and the input and its sibling stay', () => {
    const { dir, f } = models();
    const b = join(dir, 'prep', 'a', 'b');
    mkdirSync(b, { recursive: true });
    cpSync(f, join(b, 'in'), { recursive: true });
    writeFileSync(join(b, 'sibling.txt'), 'keep me');
    const before = snapshot(join(dir, 'prep'));
    refused(cli(['prepare', join(b, 'in'), b, '--force']), /holds the input/);
    refused(cli(['prepare', join(b, 'in'), join(dir, 'prep'), '--force']), /holds the input/);
    refused(cli(['prepare', join(b, 'in'), join(b, 'in'), '--force']), /is the input/);
    expect(snapshot(join(dir, 'prep'))).toEqual(before);
  });

  it('prepare --force refuses a directory that is not a shard set, or holds what prepare did not write, and replaces one it wrote', () => {
    const { dir, f } = models();
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    refused(
      cli(['prepare', f, other, '--force']),
      /not a shard set written by neurocorr prepare \(it has no manifest\.json.*remove it yourself or choose another/,
    );
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('mine');
    writeFileSync(join(other, 'manifest.json'), JSON.stringify({ format: 'neurocorr-shards', shards: [{ file: 'x.arrow' }] }));
    refused(cli(['prepare', f, other, '--force']), /it holds notes\.txt, which neurocorr did not write/);
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('mine');
    const file = join(dir, 'file');
    writeFileSync(file, 'a file');
    refused(cli(['prepare', f, file, '--force']), /is not a shard set .*a regular file/);
    expect(readFileSync(file, 'utf8')).toBe('a file');

    const shards = join(dir, 'shards');
    expect(cli(['prepare', f, shards]).status).toBe(0);
    refused(cli(['prepare', f, shards]), /already exists; .*--force/);
    expect(cli(['prepare', f, shards, '--force', '--shard-neurons', '50']).status).toBe(0);
    writeFileSync(join(shards, 'extra'), 'x');
    refused(cli(['prepare', f, shards, '--force']), /it holds extra/);
    expect(existsSync(join(shards, 'extra'))).toBe(true);
  });

  it('synth --force replaces only a set synth wrote', () => {
    const dir = scratch();
    const synth = (out: string, ...more: string[]) => cli(['synth', out, '--arch', 'mlp:10,5', '--probes', '8', ...more]);
    const plain = join(dir, 'plain');
    mkdirSync(plain);
    writeFileSync(join(plain, 'data.npy'), 'mine');
    writeFileSync(join(plain, 'layers.json'), JSON.stringify({ probes: 'synth:0:8', layers: [{ file: 'data.npy' }] }));
    refused(synth(plain, '--force'), /not a set written by neurocorr synth \(it has no synth\.json/);
    expect(readFileSync(join(plain, 'data.npy'), 'utf8')).toBe('mine');

    const set = join(dir, 'set');
    expect(synth(set).status).toBe(0);
    expect(synth(set, '--force', '--seed', '2').status).toBe(0);
    writeFileSync(join(set, 'notes.txt'), 'mine');
    refused(synth(set, '--force'), /it holds notes\.txt/);
    expect(readFileSync(join(set, 'notes.txt'), 'utf8')).toBe('mine');
  });
});

describe('outputs never overwrite an input or each other (2)', () => {
  it('score refuses --out or --matches on, inside or linked to an input, before any compute', () => {
    const { dir, f, g } = models();
    const before = snapshot(dir);
    refused(cli(['score', f, g, '--out', join(f, '0_fc1.npy')]), /--out .*0_fc1\.npy is inside the input/);
    refused(cli(['score', f, g, '--matches', join(g, 'new.csv')]), /--matches .*new\.csv is inside the input/);
    refused(cli(['score', f, g, '--out', f]), /--out .* is a directory/);
    symlinkSync(join(g, '2_fc.npy'), join(dir, 'link.json'));
    refused(cli(['score', f, g, '--out', join(dir, 'link.json')]), /inside the input/);
    // A model whose layer is a link to a file outside its folder.
    const outside = join(dir, 'layer.npy');
    cpSync(join(f, '0_fc1.npy'), outside);
    const linked = join(dir, 'linked');
    mkdirSync(linked);
    symlinkSync(outside, join(linked, '0_fc1.npy'));
    refused(cli(['score', linked, g, '--out', outside]), /which the input .*linked links to/);
    const after = snapshot(dir);
    for (const [path, bytes] of Object.entries(before)) expect(after[path], path).toBe(bytes);
    expect(existsSync(join(g, 'new.csv'))).toBe(false);
  });

  it('score refuses --out and --matches naming the same file', () => {
    const { dir, f, g } = models();
    const out = join(dir, 'same');
    refused(cli(['score', f, g, '--out', out, '--matches', out]), /--out and --matches are the same file/);
    mkdirSync(join(dir, 'sub'));
    symlinkSync(dir, join(dir, 'here'));
    refused(cli(['score', f, g, '--out', 'same', '--matches', 'sub/../same'], dir), /same file/);
    refused(cli(['score', f, g, '--out', 'same', '--matches', 'here/same'], dir), /same file/);
    expect(existsSync(out)).toBe(false);
  });

  it('prepare refuses an output inside its input', () => {
    const { f } = models();
    refused(cli(['prepare', f, join(f, 'shards')]), /is inside the input/);
    expect(existsSync(join(f, 'shards'))).toBe(false);
  });
});

describe('outputs that are not regular files are refused before any compute (3)', () => {
  it('--out an existing directory', () => {
    const { dir, f, g } = models();
    mkdirSync(join(dir, 'report'));
    refused(cli(['score', f, g, '--out', join(dir, 'report')]), /--out .*report is a directory, not a regular file/);
  });

  it('--matches a directory leaves no report behind', () => {
    const { dir, f, g } = models();
    mkdirSync(join(dir, 'matches'));
    refused(cli(['score', f, g, '--out', join(dir, 'report.json'), '--matches', join(dir, 'matches')]), /--matches .* is a directory/);
    expect(existsSync(join(dir, 'report.json'))).toBe(false);
  });

  it('--matches a FIFO stays a FIFO', () => {
    const { dir, f, g } = models();
    const fifo = join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    refused(cli(['score', f, g, '--matches', fifo]), /--matches .* is a FIFO/);
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('two outputs are written both or neither: a failed write or rename leaves the old files as they were and no temps', async () => {
    const { writeFiles } = (await import('../dist/shared/formats/index.js')) as { writeFiles?: (files: { path: string; chunks: Iterable<string> }[]) => void };
    expect(writeFiles).toBeTypeOf('function');
    const dir = scratch();
    const [a, b] = [join(dir, 'a.json'), join(dir, 'b.csv')];
    writeFileSync(a, 'old a');
    const failing = function* () {
      yield 'half';
      throw new Error('disk full');
    };
    expect(() =>
      writeFiles!([
        { path: a, chunks: ['new a'] },
        { path: b, chunks: failing() },
      ]),
    ).toThrow('disk full');
    expect(readdirSync(dir)).toEqual(['a.json']);
    expect(readFileSync(a, 'utf8')).toBe('old a');
    // The second rename fails (b is a directory now): a is put back.
    mkdirSync(b);
    writeFileSync(join(b, 'x'), '');
    expect(() =>
      writeFiles!([
        { path: a, chunks: ['new a'] },
        { path: b, chunks: ['new b'] },
      ]),
    ).toThrow();
    expect(readdirSync(dir).sort()).toEqual(['a.json', 'b.csv']);
    expect(readFileSync(a, 'utf8')).toBe('old a');
  });
});

describe('signals and stale temps (4)', () => {
  let big = '';
  beforeAll(() => {
    big = join(scratch(), 'big');
    // 20,000 neurons x 512 probes (40 MiB): prepare takes about a second in 40 shards.
    expect(cli(['synth', big, '--arch', 'mlp:20000', '--probes', '512']).status).toBe(0);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s during prepare removes its temp directory and exits %i', async (signal, code) => {
    const dir = scratch();
    const child = spawn(process.execPath, [BIN, 'prepare', big, join(dir, 'shards'), '--shard-neurons', '500'], {
      env: { ...process.env, NEUROCORR_JS_STANDARDIZE: '1' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (status) => resolve(status)));
    for (let waited = 0; !readdirSync(dir).some((e) => e.includes('.tmp-')) && waited < 20_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    expect(readdirSync(dir).some((e) => /^shards\.tmp-\d+$/.test(e))).toBe(true);
    child.kill(signal);
    expect(await exited).toBe(code);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('SIGINT while --matches is written removes both temps, writes neither output and exits 130', async () => {
    const dir = scratch();
    // 400,000 neurons against 4: the tiles are done at once, the 20 MiB of matches take a few hundred ms.
    expect(cli(['synth', join(dir, 'wide'), '--arch', 'mlp:400000', '--probes', '8']).status).toBe(0);
    expect(cli(['synth', join(dir, 'narrow'), '--arch', 'mlp:4', '--probes', '8', '--seed', '2']).status).toBe(0);
    const out = join(dir, 'out');
    mkdirSync(out);
    const args = [
      'score',
      join(dir, 'wide'),
      join(dir, 'narrow'),
      '--null',
      '0',
      '--no-progress',
      '--out',
      join(out, 'r.json'),
      '--matches',
      join(out, 'm.csv'),
    ];
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (status) => resolve(status)));
    for (let waited = 0; !readdirSync(out).some((e) => e.startsWith('m.csv.tmp-')) && waited < 20_000; waited += 2) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(readdirSync(out)).toEqual([]);
  });

  it("the next run removes temps of dead processes (and only neurocorr's exact names), keeping a live one's", () => {
    const { dir, f, g } = models();
    const dead = 999_999;
    let alive = false;
    try {
      process.kill(dead, 0);
      alive = true;
    } catch {
      // dead, as intended
    }
    if (alive) return;
    const shards = join(dir, 'shards');
    mkdirSync(`${shards}.tmp-${dead}`);
    writeFileSync(join(`${shards}.tmp-${dead}`, 'layer0000-00000.arrow'), 'x'.repeat(1000));
    mkdirSync(`${shards}.old-${dead}`);
    mkdirSync(`${shards}.tmp-${process.pid}`);
    writeFileSync(`${shards}.tmp-${dead}x`, 'not ours');
    writeFileSync(join(dir, `other.tmp-${dead}`), 'not ours');
    expect(cli(['prepare', f, shards]).status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['cnn', 'mlp', 'other.tmp-999999', 'shards', `shards.tmp-${dead}x`, `shards.tmp-${process.pid}`].sort());

    const report = join(dir, 'report.json');
    writeFileSync(`${report}.tmp-${dead}`, 'half a report');
    writeFileSync(`${report}.tmp-${process.pid}`, 'a live run');
    expect(cli(['score', f, g, '--out', report, '--no-progress', '--null', '0']).status).toBe(0);
    expect(existsSync(`${report}.tmp-${dead}`)).toBe(false);
    expect(existsSync(`${report}.tmp-${process.pid}`)).toBe(true);
    expect(existsSync(report)).toBe(true);
  });
});

describe('threads (5)', () => {
  it('--threads 1000 runs at most one thread per tile and 4 per core, and the report says how many', () => {
    const { f } = models();
    const r = cli(['score', f, f, '--threads', '1000', '--json', '--no-progress', '--null', '0']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { threads: number; tiles: number };
    expect(report.threads).toBeGreaterThanOrEqual(1);
    expect(report.threads).toBeLessThanOrEqual(Math.min(report.tiles, 4 * availableParallelism()));
    const plan = cli(['plan', f, f, '--threads', '1000', '--json']);
    expect(plan.status, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as { threads: number }).threads).toBeLessThanOrEqual(4 * availableParallelism());
    refused(cli(['score', f, f, '--threads', '1025']), /--threads/);
  });
});

describe('outputs never go through links, onto devices or into folders that refuse files (6)', () => {
  /** A folder where no file can be created, whoever runs the tests (root ignores permission bits; sysfs refuses new files even to root), or null. */
  function unwritable(): string | null {
    if (process.getuid?.() !== 0) {
      const dir = scratch();
      chmodSync(dir, 0o500);
      return dir;
    }
    try {
      writeFileSync('/sys/nc-probe', '');
      rmSync('/sys/nc-probe');
      return null;
    } catch {
      return existsSync('/sys') ? '/sys' : null;
    }
  }

  it('score --out and --matches that are links (to a file outside, to a device) are refused before compute; the links and targets stay', () => {
    const { dir, f, g } = models();
    const target = join(dir, 'target.json');
    writeFileSync(target, 'mine');
    const link = join(dir, 'link.json');
    symlinkSync(target, link);
    refused(cli(['score', f, g, '--out', link]), /--out .*link\.json is a symbolic link; an output never replaces a link/);
    refused(cli(['score', f, g, '--out', join(dir, 'r.json'), '--matches', link]), /--matches .*link\.json is a symbolic link/);
    const device = join(dir, 'null.json');
    symlinkSync('/dev/null', device);
    refused(cli(['score', f, g, '--out', device]), /--out .*null\.json is a device, not a regular file/);
    for (const [path, to] of [
      [link, target],
      [device, '/dev/null'],
    ] as const) {
      expect(lstatSync(path).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path)).toBe(to);
    }
    expect(readFileSync(target, 'utf8')).toBe('mine');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(existsSync(join(dir, 'r.json'))).toBe(false);
  });

  it('prepare --force and zoo --out refuse a link to a set they wrote, and leave the link as it was', () => {
    const { dir, f, g } = models();
    const shards = join(dir, 'shards');
    expect(cli(['prepare', f, shards]).status).toBe(0);
    const link = join(dir, 'link');
    symlinkSync(shards, link);
    refused(cli(['prepare', f, link, '--force']), /link is not a shard set written by neurocorr prepare \(a symbolic link\)/);
    expect(readlinkSync(link)).toBe(shards);
    const zooLink = join(dir, 'zoo-link');
    mkdirSync(join(dir, 'zoo'));
    symlinkSync(join(dir, 'zoo'), zooLink);
    refused(cli(['zoo', f, g, '--out', zooLink]), /zoo-link is not a folder written by neurocorr zoo \(a symbolic link\)/);
    expect(readlinkSync(zooLink)).toBe(join(dir, 'zoo'));
    expect(readdirSync(join(dir, 'zoo'))).toEqual([]);
  });

  it('an output in a folder that refuses new files, or under a regular file, is refused before compute (exit 2, no stack)', () => {
    const { dir, f, g } = models();
    const file = join(dir, 'file');
    writeFileSync(file, 'a file');
    refused(cli(['score', f, g, '--out', join(file, 'r.json')]), /--out .*file\/r\.json: .*file is a regular file, not a folder/);
    refused(cli(['prepare', f, join(file, 'shards')]), /file is a regular file, not a folder/);
    const locked = unwritable();
    if (locked === null) return;
    refused(
      cli(['score', f, g, '--out', join(locked, 'nc-report.json')]),
      /--out .*nc-report\.json: no file can be created in .* \(E[A-Z]+\); choose a folder you can write to/,
    );
    refused(cli(['score', f, g, '--matches', join(locked, 'nc-matches.csv')]), /--matches .*no file can be created/);
    refused(cli(['prepare', f, join(locked, 'nc-shards')]), /nc-shards: no file can be created in/);
    refused(cli(['synth', join(locked, 'nc-synth'), '--arch', 'mlp:4', '--probes', '8']), /nc-synth: no file can be created in/);
    expect(readdirSync(locked).filter((n) => n.startsWith('nc-'))).toEqual([]);
  });
});
