/**
 * The zoo's results store and content keys, on real SQLite files in temp
 * folders: a real score report round trip, key sensitivity, content keys and
 * their hash cache, export and import, schema checks, and the single-writer
 * lease between real processes (refused, waited for, taken over from a
 * SIGKILLed or silent writer).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { score } from '../dist/index.js';
import type { Report } from '../dist/shared/core/index.js';
import { InputError, JobFailedError, UsageError, type NeurocorrError } from '../dist/shared/errors.js';
import { prepare } from '../dist/prepare/prepare.js';
import { contentKey, type FileHashCache, type FileStamp } from '../dist/zoo/content-key.js';
import { optionsKey, pairKey, SCHEMA_VERSION, SCORE_VERSION, StoreBusyError, ZooStore, type PairKey } from '../dist/zoo/store.js';

const ROOT = join(import.meta.dirname, '..');
const STORE_MODULE = pathToFileURL(join(ROOT, 'dist', 'zoo', 'store.js')).href;
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nc-zoo-store-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const hex = (c: string) => c.repeat(64);
const KEY: PairKey = pairKey(hex('a'), hex('b'), { conv: 'units', constant: 'include', null: { permutations: 10, seed: 1 } });

let report: Report;
beforeAll(async () => {
  report = (await score({ f: join(ROOT, 'examples', 'mlp'), g: join(ROOT, 'examples', 'cnn'), threads: 2 })).report;
});

async function openWriter(path: string, extra: { wait?: number; stale?: number } = {}): Promise<ZooStore> {
  return ZooStore.open(path, { writer: true, ...extra });
}

describe('results store', () => {
  it('round-trips a real score report bit for bit (put, get, has, keys, size), in WAL mode', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    const store = await openWriter(path);
    expect(store.get(KEY)).toBeNull();
    store.put(KEY, report);
    expect(store.has(KEY)).toBe(true);
    expect(store.get(KEY)).toEqual(report);
    expect(JSON.stringify(store.get(KEY))).toBe(JSON.stringify(report));
    expect(store.keys()).toEqual([KEY]);
    expect(store.size).toBe(1);
    // What get() would refuse is never written.
    const impossible = {
      ...report,
      null: {
        ...report.null!,
        scores: { ...report.null!.scores, paper: { ...report.null!.scores.paper, backward: { ...report.null!.scores.paper.backward, mean: 15 } } },
      },
    };
    expect(() => store.put(KEY, impossible)).toThrow(/ZooStore\.put: .* fails the checks of a stored report/);
    expect(store.get(KEY)).toEqual(report);
    store.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe(String(SCHEMA_VERSION));
    raw.close();
    const reader = await ZooStore.open(path, { writer: false });
    expect(reader.get(KEY)).toEqual(report);
    expect(() => reader.put(KEY, report)).toThrow(/writer: true/);
    reader.close();
  });

  it('misses when either content key, the options key or the score version changes', async () => {
    const store = await openWriter(join(tempDir(), 'zoo.sqlite'));
    store.put(KEY, report);
    const options = { conv: 'units', constant: 'include', null: { permutations: 10, seed: 1 } };
    expect(store.get(pairKey(hex('a'), hex('b'), options, SCORE_VERSION))).toEqual(report);
    expect(store.get(pairKey(hex('c'), hex('b'), options))).toBeNull();
    expect(store.get(pairKey(hex('a'), hex('c'), options))).toBeNull();
    expect(store.get(pairKey(hex('b'), hex('a'), options))).toBeNull();
    expect(store.get(pairKey(hex('a'), hex('b'), { ...options, constant: 'exclude' }))).toBeNull();
    expect(store.get(pairKey(hex('a'), hex('b'), { ...options, null: { permutations: 10, seed: 2 } }))).toBeNull();
    expect(store.get(pairKey(hex('a'), hex('b'), options, SCORE_VERSION + 1))).toBeNull();
    store.close();
  });

  it('keys options canonically: key order and undefined values do not matter, values do', () => {
    expect(optionsKey({ b: 1, a: { d: [1, 2], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,2]},"b":1}');
    expect(optionsKey({ a: 1, b: undefined })).toBe(optionsKey({ a: 1 }));
    expect(optionsKey({ a: 1 })).not.toBe(optionsKey({ a: 2 }));
    expect(() => optionsKey({ a: Number.NaN })).toThrow(/NaN/);
  });

  it('refuses a store from a newer neurocorr, a file that is not a store, and a missing store for a reader (exit 2)', async () => {
    const dir = tempDir();
    const path = join(dir, 'zoo.sqlite');
    (await openWriter(path)).close();
    const raw = new Database(path);
    raw.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(String(SCHEMA_VERSION + 1));
    raw.close();
    const newer = await ZooStore.open(path, { writer: false }).catch((e: unknown) => e);
    expect(newer).toBeInstanceOf(InputError);
    expect((newer as InputError).exitCode).toBe(2);
    expect((newer as Error).message).toMatch(/newer neurocorr \(results store schema 2; this neurocorr reads schema 1\)/);
    writeFileSync(join(dir, 'text.sqlite'), 'not a database at all, just some text that is long enough to be a header\n'.repeat(10));
    await expect(openWriter(join(dir, 'text.sqlite'))).rejects.toThrow(/not a usable SQLite database/);
    const other = new Database(join(dir, 'other.sqlite'));
    other.exec('CREATE TABLE t (x)');
    other.close();
    await expect(openWriter(join(dir, 'other.sqlite'))).rejects.toThrow(/not a zoo results store/);
    await expect(ZooStore.open(join(dir, 'none.sqlite'), { writer: false })).rejects.toThrow(/no results store is there/);
    await expect(openWriter(join(dir, 'no-folder', 'zoo.sqlite'))).rejects.toThrow(/does not exist/);
    await expect(openWriter(path, { wait: -1 })).rejects.toThrow(UsageError);
  });
});

describe('export and import', () => {
  it('export then import into a fresh store gives the same pairs, reports bit for bit', async () => {
    const dir = tempDir();
    const store = await openWriter(join(dir, 'a.sqlite'));
    const other = pairKey(hex('c'), hex('d'), { conv: 'channels' });
    store.put(KEY, report);
    store.put(other, { ...report, models: { F: 'x', G: 'y' } });
    expect(store.export(join(dir, 'zoo.jsonl'))).toBe(2);
    store.close();
    const text = readFileSync(join(dir, 'zoo.jsonl'), 'utf8');
    expect(text.split('\n')).toHaveLength(4);
    expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({ format: 'neurocorr-zoo-export', version: 1, records: 2 });
    const fresh = await openWriter(join(dir, 'b.sqlite'));
    expect(fresh.import(join(dir, 'zoo.jsonl'))).toEqual({ added: 2, kept: 0 });
    expect(fresh.keys()).toEqual([KEY, other].sort((x, y) => (x.f < y.f ? -1 : 1)));
    expect(JSON.stringify(fresh.get(KEY))).toBe(JSON.stringify(report));
    expect(fresh.import(join(dir, 'zoo.jsonl'))).toEqual({ added: 0, kept: 2 });
    expect(() => fresh.export(join(dir, 'b.sqlite'))).toThrow(/results store's own file/);
    fresh.close();
    const reader = await ZooStore.open(join(dir, 'b.sqlite'), { writer: false });
    expect(reader.export(join(dir, 'again.jsonl'))).toBe(2);
    reader.close();
    const body = (file: string) => readFileSync(join(dir, file), 'utf8').split('\n').slice(1);
    expect(body('again.jsonl')).toEqual(body('zoo.jsonl'));
  });

  it('refuses a damaged export naming the file, line and fix, and leaves the store unchanged', async () => {
    const dir = tempDir();
    const source = await openWriter(join(dir, 'a.sqlite'));
    source.put(KEY, report);
    source.put(pairKey(hex('c'), hex('d'), {}), report);
    source.put(pairKey(hex('e'), hex('f'), {}), report);
    source.export(join(dir, 'good.jsonl'));
    source.close();
    const lines = readFileSync(join(dir, 'good.jsonl'), 'utf8').split('\n');
    const store = await openWriter(join(dir, 'b.sqlite'));
    store.put(pairKey(hex('9'), hex('8'), {}), report);
    const cases: [string, string, RegExp][] = [
      ['truncated', lines.slice(0, 3).join('\n'), /:3: the file holds 2 records, its header says 3: it is truncated/],
      ['bad JSON', [lines[0], lines[1], lines[2]!.slice(0, 50), lines[3]].join('\n'), /bad JSON\.jsonl:3: the line is not JSON/],
      ['bad key', [lines[0], lines[1], lines[2]!.replace(/"f":"c+"/, '"f":"xyz"'), lines[3]].join('\n'), /:3: f must be a content key/],
      ['bad report', [lines[0], lines[1], lines[2], lines[3]!.replace('"version":1', '"version":7')].join('\n'), /:4: "report" is not a pair's report/],
      ['newer', [lines[0]!.replace('"version":1', '"version":9'), ...lines.slice(1)].join('\n'), /:1: the export's version 9 is newer/],
      ['no header', lines.slice(1).join('\n'), /:1: the first line must be the header/],
      ['empty', '', /the file is empty/],
    ];
    for (const [name, body, message] of cases) {
      writeFileSync(join(dir, `${name}.jsonl`), body);
      const err = (() => {
        try {
          store.import(join(dir, `${name}.jsonl`));
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(err, name).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
      expect((err as Error).message, name).toMatch(message);
      expect((err as Error).message).toMatch(/Fix: import a file that a results store's export wrote/);
      expect(store.size, name).toBe(1);
    }
    store.close();
  });
});

describe('content keys', () => {
  it("an npy folder's key changes exactly when a file's bytes change, and the hash cache is reused", async () => {
    const dir = tempDir();
    const set = join(dir, 'mlp');
    cpSync(join(ROOT, 'examples', 'mlp'), set, { recursive: true });
    const store = await openWriter(join(dir, 'zoo.sqlite'));
    const counted = countingCache(store.fileHashes);
    // Files written less than 2 s ago are hashed but not cached (racy): age them.
    const age = () => {
      for (const f of ['0_fc1.npy', '1_fc2.npy', '2_fc3.npy']) utimesSync(join(set, f), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    };
    age();
    const first = await contentKey(set, counted.cache);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(counted.remembered).toBe(3);
    expect(await contentKey(set, counted.cache)).toBe(first);
    expect(counted.hits).toBe(3);
    expect(await contentKey(join(ROOT, 'examples', 'mlp'))).toBe(first);
    // touch: new mtime, same bytes: hashed again, same key.
    utimesSync(join(set, '1_fc2.npy'), new Date(), new Date());
    expect(await contentKey(set, counted.cache)).toBe(first);
    // One byte changed, same size, old mtime put back: ctime still moved, so it is hashed again.
    const file = join(set, '2_fc3.npy');
    const bytes = readFileSync(file);
    const { mtime } = statSync(file);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(file, bytes);
    utimesSync(file, mtime, mtime);
    const changed = await contentKey(set, counted.cache);
    expect(changed).not.toBe(first);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(file, bytes);
    expect(await contentKey(set, counted.cache)).toBe(first);
    writeFileSync(join(set, 'layers.json'), JSON.stringify({ probes: 'fp-1' }));
    expect(await contentKey(set, counted.cache)).not.toBe(first);
    rmSync(join(set, 'layers.json'));
    writeFileSync(join(set, 'README.txt'), 'not read by the loader');
    expect(await contentKey(set, counted.cache)).toBe(first);
    store.close();
  });

  it('a cached hash is used while the stamp is unchanged, so the store keeps it across runs', async () => {
    const dir = tempDir();
    const file = join(dir, 'm.safetensors');
    writeFileSync(file, safetensors([1, 2, 3, 4]));
    utimesSync(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const path = join(dir, 'zoo.sqlite');
    const store = await openWriter(path);
    const key = await contentKey(file, store.fileHashes);
    store.close();
    const raw = new Database(path);
    raw.prepare('UPDATE file_hashes SET sha256 = ?').run(hex('0'));
    raw.close();
    const again = await openWriter(path);
    // The planted hash shows it was reused, not recomputed.
    expect(await contentKey(file, again.fileHashes)).not.toBe(key);
    expect(again.forgetFileHashes()).toBe(1);
    expect(await contentKey(file, again.fileHashes)).toBe(key);
    again.close();
  });

  it('keys a .safetensors file by its bytes and a shard set by its manifest', async () => {
    const dir = tempDir();
    const a = join(dir, 'a.safetensors');
    writeFileSync(a, safetensors([1, 2, 3, 4]));
    const b = join(dir, 'b.safetensors');
    writeFileSync(b, safetensors([1, 2, 3, 5]));
    expect(await contentKey(a)).not.toBe(await contentKey(b));
    writeFileSync(b, safetensors([1, 2, 3, 4]));
    expect(await contentKey(b)).toBe(await contentKey(a));

    const shards = join(dir, 'shards');
    await prepare({ input: join(ROOT, 'examples', 'mlp'), out: shards, memory: 64 << 20, conv: 'units', force: false, log: () => undefined });
    const key = await contentKey(shards);
    const copy = join(dir, 'copy');
    cpSync(shards, copy, { recursive: true });
    const manifestFile = join(copy, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { model: string; shards: { sha256: string }[] };
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, model: 'renamed' }, null, 2));
    expect(await contentKey(copy)).toBe(key);
    manifest.shards[0]!.sha256 = hex('0');
    writeFileSync(manifestFile, JSON.stringify(manifest));
    expect(await contentKey(copy)).not.toBe(key);
  });

  it('refuses what is not an activation set, a FIFO and a missing path with exit-2 errors', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'pipe.safetensors');
    execFileSync('mkfifo', [fifo]);
    const npy = join(dir, 'set');
    mkdirSync(npy);
    execFileSync('mkfifo', [join(npy, 'layer.npy')]);
    writeFileSync(join(dir, 'x.bin'), 'x');
    for (const [path, message] of [
      [fifo, /is a FIFO \(named pipe\), not a regular file/],
      [npy, /layer\.npy: is a FIFO/],
      [join(dir, 'x.bin'), /is not an activation set/],
      [join(dir, 'missing'), /no such file or directory/],
      [join(dir, 'empty-dir-none'), /no such file or directory/],
    ] as const) {
      const err = await contentKey(path).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(InputError);
      expect((err as NeurocorrError).exitCode).toBe(2);
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('one writer per store (real processes)', () => {
  it('refuses a second writer while another process holds the store; readers still read', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    const seed = await openWriter(path);
    seed.put(KEY, report);
    seed.close();
    const child = await holder(path, 'hold');
    const err = await openWriter(path, { wait: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreBusyError);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(new RegExp(`being written by pid ${child.pid} on .* waited 0\\.[3-9] s`));
    const reader = await ZooStore.open(path, { writer: false });
    expect(reader.get(KEY)).toEqual(report);
    reader.close();
    child.kill('SIGTERM');
  });

  it('readers never wait, and a contender keeps to its `wait`, while the writer is inside a write transaction', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    const seed = await openWriter(path);
    seed.put(KEY, report);
    seed.close();
    await holder(path, 'in-transaction');
    let started = Date.now();
    const reader = await ZooStore.open(path, { writer: false });
    expect(reader.get(KEY)).toEqual(report);
    expect(reader.size).toBe(1);
    reader.close();
    expect(Date.now() - started).toBeLessThan(2000);
    started = Date.now();
    await expect(openWriter(path, { wait: 300 })).rejects.toThrow(StoreBusyError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a writer waits up to `wait` ms for the holder to finish', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    (await openWriter(path)).close();
    await holder(path, 'close-after-800');
    const started = Date.now();
    const store = await openWriter(path, { wait: 20_000 });
    expect(Date.now() - started).toBeGreaterThan(300);
    expect(store.tookOver).toBeNull();
    store.close();
  });

  it("takes over a SIGKILLed writer's lease at once on its own host, and the store is intact", async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    (await openWriter(path)).close();
    const child = await holder(path, 'put-loop');
    await waitFor(() => countPairs(path) >= 20);
    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));
    const store = await openWriter(path);
    expect(store.tookOver?.pid).toBe(child.pid);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    raw.close();
    const stored = store.keys();
    expect(stored.length).toBeGreaterThanOrEqual(20);
    for (const key of stored) expect(store.get(key)?.scores).toEqual(report.scores);
    store.close();
  });

  it('takes over a silent writer (SIGSTOP) once its heartbeat is stale; the old writer then writes nothing', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    (await openWriter(path)).close();
    // It stops itself between two puts: a writer stopped inside a transaction would hold SQLite's write lock.
    const child = await holder(path, 'put-then-stop', 1500);
    await waitFor(() => countPairs(path) >= 2);
    await waitFor(() => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' ')[2] === 'T');
    const busy = await openWriter(path, { stale: 1500 }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(StoreBusyError);
    const store = await openWriter(path, { stale: 1500, wait: 10_000 });
    expect(store.tookOver?.pid).toBe(child.pid);
    expect(store.size).toBe(2);
    const exited = new Promise<string>((done) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', () => done(out));
    });
    child.kill('SIGCONT');
    expect(await exited).toMatch(/lost E_LEASE_LOST 4/);
    expect(store.size).toBe(2);
    store.put(KEY, report);
    store.close();
  });

  it('judges a lease from another host by its heartbeat only', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    (await openWriter(path)).close();
    const plant = (heartbeat: number) => {
      const raw = new Database(path);
      raw
        .prepare('INSERT OR REPLACE INTO lease (id, owner, pid, host, scope, started_ms, heartbeat_ms) VALUES (1, ?, ?, ?, ?, ?, ?)')
        .run('pod-b:1:x', 1, 'pod-b', 'pod-b pid:[1] boot', heartbeat, heartbeat);
      raw.close();
    };
    plant(Date.now());
    // pid 1 on another host: it cannot be checked from here, and its heartbeat is fresh.
    await expect(openWriter(path, { stale: 60_000 })).rejects.toThrow(/being written by pid 1 on pod-b/);
    plant(Date.now() - 61_000);
    const store = await openWriter(path, { stale: 60_000 });
    expect(store.tookOver).toMatchObject({ pid: 1, host: 'pod-b' });
    store.close();
  });

  it('a lost lease stops writes with exit 4', async () => {
    const path = join(tempDir(), 'zoo.sqlite');
    const store = await openWriter(path);
    const raw = new Database(path);
    raw.prepare("UPDATE lease SET owner = 'someone else'").run();
    raw.close();
    const err = (() => {
      try {
        store.put(KEY, report);
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).code).toBe('E_LEASE_LOST');
    expect(store.size).toBe(0);
    store.close();
  });
});

/** A child process that opens `path` as the writer and then holds it, closes it after a while, or puts pairs until stopped. */
async function holder(path: string, mode: string, stale = 120_000): Promise<ChildProcess> {
  const script = `
    const { ZooStore, pairKey } = await import(${JSON.stringify(STORE_MODULE)});
    const report = JSON.parse(process.argv[1]);
    const store = await ZooStore.open(${JSON.stringify(path)}, { writer: true, stale: ${stale} });
    const mode = ${JSON.stringify(mode)};
    const key = (i) => pairKey(i.toString(16).padStart(64, '0'), 'f'.repeat(64), {});
    if (mode !== 'in-transaction') process.stdout.write('ready\\n');
    if (mode === 'hold') setInterval(() => undefined, 1000);
    if (mode.startsWith('close-after-')) setTimeout(() => store.close(), Number(mode.slice(12)));
    if (mode === 'in-transaction') {
      const { createRequire } = await import('node:module');
      const raw = new (createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('better-sqlite3'))(${JSON.stringify(path)});
      raw.exec("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('uncommitted', 'x')");
      process.stdout.write('ready\\n');
      setInterval(() => undefined, 1000);
    }
    if (mode === 'put-loop') for (let i = 0; ; i++) store.put(key(i), report);
    if (mode === 'put-then-stop') {
      store.put(key(0), report);
      store.put(key(1), report);
      process.kill(process.pid, 'SIGSTOP');
      try { store.put(key(2), report); } catch (err) { process.stdout.write('lost ' + err.code + ' ' + err.exitCode + '\\n'); process.exit(0); }
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(report)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((ready, fail) => {
    const onData = (d: Buffer) => {
      if (d.toString().includes('ready')) {
        child.stdout!.off('data', onData);
        ready();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => fail(new Error(`holder exited with ${code}: ${err}`)));
  });
  return child;
}

function countPairs(path: string): number {
  const raw = new Database(path, { readonly: true });
  try {
    return raw.prepare<[], number>('SELECT count(*) FROM pairs').pluck().get() ?? 0;
  } finally {
    raw.close();
  }
}

async function waitFor(condition: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function countingCache(inner: FileHashCache) {
  const counts = { hits: 0, remembered: 0 };
  const cache: FileHashCache = {
    lookup: (stamp: FileStamp) => {
      const found = inner.lookup(stamp);
      if (found !== null) counts.hits++;
      return found;
    },
    remember: (stamp, sha) => {
      counts.remembered++;
      inner.remember(stamp, sha);
    },
  };
  return Object.assign(counts, { cache });
}

/** A .safetensors file with one float32 tensor "fc" of shape [values.length / 2, 2]. */
function safetensors(values: number[]): Buffer {
  const data = Buffer.from(new Float32Array(values).buffer);
  const header = Buffer.from(JSON.stringify({ fc: { dtype: 'F32', shape: [values.length / 2, 2], data_offsets: [0, data.length] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header, data]);
}

describe('imports that are impossible, relabelled or huge (issue 23)', () => {
  const BIN = join(ROOT, 'bin', 'neurocorr.js');
  const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  const mlp = join(ROOT, 'examples', 'mlp');
  const cnn = join(ROOT, 'examples', 'cnn');

  /** An export of `records` (report text as given), each line passed through `edit`. */
  function exportOf(dir: string, name: string, records: readonly { f: string; g: string; report: unknown }[], edit = (line: string) => line): string {
    const header = JSON.stringify({ format: 'neurocorr-zoo-export', version: 1, records: records.length, exported: new Date(0).toISOString() });
    const lines = records.map((r) => edit(JSON.stringify({ f: r.f, g: r.g, options: {}, scoreVersion: SCORE_VERSION, created: 1, report: r.report })));
    const file = join(dir, name);
    writeFileSync(file, `${[header, ...lines].join('\n')}\n`);
    return file;
  }

  /** `store.import(file)` fails with exit 2 matching `message`, and the store keeps its `size` pairs. */
  function refusedImport(store: ZooStore, file: string, message: RegExp): void {
    const size = store.size;
    let error: unknown = null;
    try {
      store.import(file);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(2);
    expect((error as Error).message).toMatch(message);
    expect(store.size).toBe(size);
  }

  it('refuses impossible numbers (a score of 7.5 or 1e999, a constant count past its side, layers that do not add up, -3 permutations) naming file:line', async () => {
    const dir = tempDir();
    const store = await openWriter(join(dir, 'zoo.sqlite'));
    const edited = (edit: (r: Report) => unknown) => [{ f: hex('a'), g: hex('b'), report: edit(structuredClone(report)) }];
    const at = (field: string) => new RegExp(`bad\\.jsonl:2: "report" is not a pair's report: "${field.replace(/\./g, '\\.')}" must be`);
    refusedImport(
      store,
      exportOf(
        dir,
        'bad.jsonl',
        edited((r) => ({ ...r, scores: { ...r.scores, paper: { ...r.scores.paper, forward: 7.5 } } })),
      ),
      at('scores.paper.forward'),
    );
    const infinite = exportOf(
      dir,
      'bad.jsonl',
      edited((r) => ({ ...r, chance: { ...r.chance, symmetric: 123.25 } })),
      (line) => line.replace('123.25', '1e999'),
    );
    refusedImport(store, infinite, at('chance.symmetric'));
    refusedImport(
      store,
      exportOf(
        dir,
        'bad.jsonl',
        edited((r) => ({ ...r, constant: [r.neurons[0] + 1, 0] })),
      ),
      /"constant" must be/,
    );
    refusedImport(
      store,
      exportOf(
        dir,
        'bad.jsonl',
        edited((r) => ({ ...r, neurons: [r.neurons[0] + 1, r.neurons[1]] })),
      ),
      /the layers of F must add up/,
    );
    refusedImport(
      store,
      exportOf(
        dir,
        'bad.jsonl',
        edited((r) => ({ ...r, null: r.null && { ...r.null, permutations: -3 } })),
      ),
      /"null" must be null or/,
    );
    store.close();
  });

  it('refuses a relabelled record: a diagonal key over two models, or a content key that names another model than elsewhere in the file or the store', async () => {
    const dir = tempDir();
    const store = await openWriter(join(dir, 'zoo.sqlite'));
    refusedImport(
      store,
      exportOf(dir, 'diagonal.jsonl', [{ f: hex('a'), g: hex('a'), report }]),
      /"f" and "g" are the same content key, but its F and G sides describe different models/,
    );
    // a is mlp (F) on line 2, then stands for cnn (G) on line 3.
    const swapped = exportOf(dir, 'swapped.jsonl', [
      { f: hex('a'), g: hex('b'), report },
      { f: hex('c'), g: hex('a'), report },
    ]);
    refusedImport(
      store,
      swapped,
      /swapped\.jsonl:3: "report" does not fit its key: its G side describes another model .* than line 2 does for the same content key aaaaaaaaaaaa/,
    );
    store.put(pairKey(hex('a'), hex('b'), {}), report);
    refusedImport(
      store,
      exportOf(dir, 'stored.jsonl', [{ f: hex('b'), g: hex('c'), report }]),
      /its F side describes another model .* than a pair the store holds does/,
    );
    expect(store.import(exportOf(dir, 'fits.jsonl', [{ f: hex('a'), g: hex('d'), report }]))).toEqual({ added: 1, kept: 0 });
    store.close();
  });

  it('refuses a line longer than the bound (16 MiB) naming file:line', async () => {
    const { MAX_LINE_BYTES } = (await import('../dist/zoo/store-file.js')) as { MAX_LINE_BYTES: number };
    expect(MAX_LINE_BYTES).toBe(16 * 1024 * 1024);
    const dir = tempDir();
    const store = await openWriter(join(dir, 'zoo.sqlite'));
    const file = exportOf(dir, 'long.jsonl', [{ f: hex('a'), g: hex('b'), report }], (line) => line.replace('{"f"', `${' '.repeat(MAX_LINE_BYTES)}{"f"`));
    refusedImport(store, file, /long\.jsonl:2: the line is longer than 16777216 bytes/);
    store.close();
  });

  it('export refuses a symbolic link (to a file outside) and a path under a regular file, writing nothing', async () => {
    const dir = tempDir();
    const store = await openWriter(join(dir, 'zoo.sqlite'));
    store.put(KEY, report);
    writeFileSync(join(dir, 'target.jsonl'), 'mine');
    symlinkSync(join(dir, 'target.jsonl'), join(dir, 'link.jsonl'));
    expect(() => store.export(join(dir, 'link.jsonl'))).toThrow(/export .*link\.jsonl is a symbolic link; an output never replaces a link/);
    expect(() => store.export(join(dir, 'target.jsonl', 'x.jsonl'))).toThrow(/target\.jsonl is a regular file, not a folder/);
    expect(lstatSync(join(dir, 'link.jsonl')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'target.jsonl'), 'utf8')).toBe('mine');
    store.close();
  });

  it('a failed CLI import into a new store leaves no store file behind', () => {
    const dir = tempDir();
    const bad = exportOf(dir, 'bad.jsonl', [{ f: hex('a'), g: hex('a'), report }]);
    const r = cli(['zoo-store', 'import', join(dir, 'new.sqlite'), bad]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/bad\.jsonl:2: "report" does not fit its key/);
    expect(readdirSync(dir)).toEqual(['bad.jsonl']);
  });

  it('a zoo never shows a stored report that does not describe its models: it computes it again', () => {
    const dir = tempDir();
    const out = join(dir, 'zoo');
    const zoo = () => cli(['zoo', `mlp=${mlp}`, `cnn=${cnn}`, '--out', out, '--null', '0', '--no-progress']);
    expect(zoo().status).toBe(0);
    // Swap the two off-diagonal reports: each now sits under the other pair's key.
    const db = new Database(join(out, 'zoo.sqlite'));
    const rows = db.prepare<[], { id: number; f: string; g: string; report: string }>('SELECT id, f, g, report FROM pairs WHERE f != g').all();
    expect(rows).toHaveLength(2);
    const update = db.prepare('UPDATE pairs SET report = ? WHERE id = ?');
    update.run(rows[1]!.report, rows[0]!.id);
    update.run(rows[0]!.report, rows[1]!.id);
    db.close();
    const r = zoo();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the stored report of (mlp x cnn|cnn x mlp) does not describe these models .*: computing it again/);
    expect(r.stdout).toMatch(/computed 2 pairs, reused 2/);
  });

  it('a zoo refused on its inputs leaves no folder it created', async () => {
    const { encodeNpy, parseNpy } = await import('../dist/shared/formats/index.js');
    const dir = tempDir();
    const nan = join(dir, 'nan');
    cpSync(mlp, nan, { recursive: true });
    const layer = parseNpy(readFileSync(join(nan, '0_fc1.npy')), '0_fc1.npy');
    const values = Float32Array.from(layer.data);
    values[7] = NaN;
    writeFileSync(join(nan, '0_fc1.npy'), encodeNpy(values, layer.shape));
    const r = cli(['zoo', nan, mlp, '--out', join(dir, 'zoo'), '--null', '0', '--no-progress']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/0_fc1\.npy: .*NaN/);
    expect(existsSync(join(dir, 'zoo'))).toBe(false);
  });
});
