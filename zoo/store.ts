/**
 * The zoo's results store: every pair's report, keyed by content (both sets'
 * content keys, the options key, SCORE_VERSION), in one SQLite file in WAL
 * mode. One writer at a time holds its lease (store-lock.ts); readers never
 * wait. Every put is one durable transaction, so a killed run keeps every
 * pair it finished and nothing half-written. The store also keeps the
 * sha256s of input files, so that unchanged sets are not hashed again.
 *
 * SQLite in WAL mode needs every process that opens the file on one host:
 * a local disk or a block volume (a Kubernetes ReadWriteOnce volume), not a
 * network file system shared between machines.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Report } from '../shared/core/index.js';
import { InputError, InternalError, UsageError } from '../shared/errors.js';
import { checkOutputFiles, lexists, writeAtomic } from '../shared/formats/index.js';
import type { FileHashCache, FileStamp } from './content-key.js';
import { pairKeyProblem, type PairKey } from './pair-key.js';
import { KeyCheck, isReport, sideSignature } from './report-check.js';
import { exportLines, readExport, type PairRow } from './store-file.js';
import { DEFAULT_STALE_MS, WriterLease, type LeaseHolder } from './store-lock.js';
import { openStoreFile, storeError } from './store-schema.js';
import type { Database } from './sqlite.js';

export { SCORE_VERSION, optionsKey, pairKey, type PairKey } from './pair-key.js';
export { DEFAULT_STALE_MS, StoreBusyError, type LeaseHolder } from './store-lock.js';
export { SCHEMA_VERSION } from './store-schema.js';

export interface ZooStoreOptions {
  /** Take the writer lease (one writer per store); a reader never waits and never writes. */
  readonly writer: boolean;
  /** How long (ms) a writer waits for a live writer's lease before refusing (StoreBusyError); default 0. */
  readonly wait?: number;
  /** A lease whose heartbeat is older than this (ms) is taken over; default DEFAULT_STALE_MS (2 minutes). */
  readonly stale?: number;
}

export interface ImportResult {
  /** Records added to the store. */
  readonly added: number;
  /** Records whose key the store held already: its report is kept. */
  readonly kept: number;
}

/** The longest wait or stale time taken (a day): anything longer is a mistake. */
const MAX_MS = 86_400_000;

const KEY_WHERE = 'f = ? AND g = ? AND options = ? AND score_version = ?';
const keyParams = (k: PairKey): [string, string, string, number] => [k.f, k.g, k.options, k.version];

interface Row {
  f: string;
  g: string;
  options: string;
  score_version: number;
  report: string;
  created_ms: number;
}

export class ZooStore {
  /** The sha256s of input files, for `contentKey` (a reader's store looks them up but adds none). */
  readonly fileHashes: FileHashCache;

  private constructor(
    readonly path: string,
    private readonly db: Database,
    private readonly lease: WriterLease | null,
  ) {
    this.fileHashes = {
      lookup: (stamp) => this.lookupHash(stamp),
      remember: (stamp, sha256) => this.rememberHash(stamp, sha256),
    };
  }

  /** Opens (a writer: creates) the store at `path`; a writer first takes the lease, waiting up to `wait` ms. */
  static async open(path: string, options: ZooStoreOptions): Promise<ZooStore> {
    const { wait = 0, stale = DEFAULT_STALE_MS } = options;
    if (!(wait >= 0 && wait <= MAX_MS) || !(stale > 0 && stale <= MAX_MS)) {
      throw new UsageError(`results store ${path}: wait must be 0 to ${MAX_MS} ms and stale 1 to ${MAX_MS} ms, got ${wait} and ${stale}`);
    }
    const db = openStoreFile(path, options.writer);
    if (!options.writer) return new ZooStore(path, db, null);
    try {
      const lease = await WriterLease.acquire(db, path, { wait, stale });
      return new ZooStore(path, db, lease);
    } catch (err) {
      db.close();
      throw storeError(path, err);
    }
  }

  get writer(): boolean {
    return this.lease !== null;
  }

  /** The writer whose lease this one took over (it had died or gone silent), or null. */
  get tookOver(): LeaseHolder | null {
    return this.lease?.tookOver ?? null;
  }

  get(key: PairKey): Report | null {
    const row = this.db.prepare<[string, string, string, number], { report: string }>(`SELECT report FROM pairs WHERE ${KEY_WHERE}`).get(...keyParams(key));
    if (row === undefined) return null;
    let report: unknown;
    try {
      report = JSON.parse(row.report);
    } catch {
      report = undefined;
    }
    if (!isReport(report)) {
      const fix = 'delete the store file (its pairs are computed again), or restore it from an export';
      throw new InputError('E_INPUT_FORMAT', this.path, `the stored report of pair ${key.f.slice(0, 12)}.. x ${key.g.slice(0, 12)}.. is damaged`, fix);
    }
    return report;
  }

  has(key: PairKey): boolean {
    return this.db.prepare(`SELECT 1 FROM pairs WHERE ${KEY_WHERE}`).get(...keyParams(key)) !== undefined;
  }

  /** Stores `report` under `key`, replacing any report there: one durable transaction, refused (exit 4) if the lease was lost. */
  put(key: PairKey, report: Report): void {
    const lease = this.requireWriter('put');
    const problem = pairKeyProblem(key);
    if (problem !== null) throw new InternalError(`ZooStore.put: ${problem}`);
    // What get() would refuse is never written: an impossible report is this run's failure, not the next one's.
    if (!isReport(report))
      throw new InternalError(`ZooStore.put: the report of pair ${key.f.slice(0, 12)}.. x ${key.g.slice(0, 12)}.. fails the checks of a stored report`);
    const text = JSON.stringify(report);
    const insert = this.db.prepare('INSERT OR REPLACE INTO pairs (f, g, options, score_version, report, created_ms) VALUES (?, ?, ?, ?, ?, ?)');
    this.db
      .transaction(() => {
        lease.confirm();
        insert.run(...keyParams(key), text, Date.now());
      })
      .immediate();
  }

  /** Every stored pair's key, sorted. */
  keys(): PairKey[] {
    return this.db
      .prepare<[], Omit<Row, 'report' | 'created_ms'>>('SELECT f, g, options, score_version FROM pairs ORDER BY f, g, options, score_version')
      .all()
      .map((r) => ({ f: r.f, g: r.g, options: r.options, version: r.score_version }));
  }

  get size(): number {
    return this.db.prepare<[], number>('SELECT count(*) FROM pairs').pluck().get() ?? 0;
  }

  /**
   * Writes every pair to `file` (JSON Lines, store-file.ts), from one
   * snapshot of the store; the file is written whole or not at all. Returns
   * how many pairs it holds.
   */
  export(file: string): number {
    if ([this.path, `${this.path}-wal`, `${this.path}-shm`, `${this.path}-journal`].some((p) => resolve(p) === resolve(file))) {
      throw new UsageError(`export ${file} is the results store's own file; choose another path`);
    }
    checkOutputFiles([{ path: file, option: 'export' }], [this.path]);
    let records = 0;
    const db = this.db;
    function* snapshot(): Generator<string> {
      db.exec('BEGIN');
      try {
        records = db.prepare<[], number>('SELECT count(*) FROM pairs').pluck().get() ?? 0;
        const rows = db.prepare<[], Row>('SELECT f, g, options, score_version, report, created_ms FROM pairs ORDER BY f, g, options, score_version').iterate();
        yield* exportLines(records, toPairRows(rows));
      } finally {
        db.exec('COMMIT');
      }
    }
    writeAtomic(file, snapshot());
    return records;
  }

  /**
   * Adds every pair of the export `file`, in one transaction: a file with any
   * bad record (InputError naming its line) adds nothing. A pair the store
   * holds already keeps its report.
   */
  import(file: string): ImportResult {
    const lease = this.requireWriter('import');
    const insert = this.db.prepare('INSERT OR IGNORE INTO pairs (f, g, options, score_version, report, created_ms) VALUES (?, ?, ?, ?, ?, ?)');
    const keys = new KeyCheck((content, key) => this.storedSide(content, key));
    return this.db
      .transaction((): ImportResult => {
        lease.confirm();
        let added = 0;
        const total = readExport(
          file,
          (row) => {
            added += insert.run(...keyParams(row.key), row.report, row.created).changes;
          },
          (key, report, where) => keys.problem(key, report, where),
        );
        // A long import must still hold the lease when it commits.
        lease.confirm();
        return { added, kept: total - added };
      })
      .immediate();
  }

  /** Drops every cached file hash (every set is hashed again); returns how many there were. */
  forgetFileHashes(): number {
    this.requireWriter('forgetFileHashes');
    return this.db.prepare('DELETE FROM file_hashes').run().changes;
  }

  /** Releases the lease (a writer) and closes the file. */
  close(): void {
    if (!this.db.open) return;
    this.lease?.release();
    this.db.close();
  }

  private requireWriter(what: string): WriterLease {
    if (this.lease === null) throw new InternalError(`ZooStore.${what} needs a store opened with writer: true`);
    return this.lease;
  }

  /** How a stored pair under `key`'s options and score version describes the model of content key `content` (sideSignature), or null when none names it. */
  private storedSide(content: string, key: PairKey): string | null {
    const row = this.db
      .prepare<[string, number, string, string], { f: string; report: string }>(
        'SELECT f, report FROM pairs WHERE options = ? AND score_version = ? AND (f = ? OR g = ?) LIMIT 1',
      )
      .get(key.options, key.version, content, content);
    if (row === undefined) return null;
    let report: unknown;
    try {
      report = JSON.parse(row.report);
    } catch {
      return null;
    }
    return isReport(report) ? sideSignature(report, row.f === content ? 'F' : 'G') : null;
  }

  private lookupHash(stamp: FileStamp): string | null {
    const row = this.db
      .prepare<[string, string, string, string, string], string>(
        'SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? AND ino = ?',
      )
      .pluck()
      .get(stamp.path, String(stamp.size), String(stamp.mtimeNs), String(stamp.ctimeNs), String(stamp.ino));
    return row ?? null;
  }

  private rememberHash(stamp: FileStamp, sha256: string): void {
    if (this.lease === null) return;
    this.db
      .prepare('INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, ctime_ns, ino, sha256, hashed_ms) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(stamp.path, String(stamp.size), String(stamp.mtimeNs), String(stamp.ctimeNs), String(stamp.ino), sha256, Date.now());
  }
}

/**
 * `neurocorr zoo-store import`: adds the pairs of the export `file` to the
 * store at `path` (created if missing; `wait` as ZooStoreOptions'). A failed
 * import adds nothing, and leaves no store it created behind.
 */
export async function importExport(path: string, file: string, wait: number): Promise<ImportResult> {
  const created = !lexists(path);
  const store = await ZooStore.open(path, { writer: true, wait });
  try {
    return store.import(file);
  } catch (err) {
    store.close();
    if (created) for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(p, { force: true });
    throw err;
  } finally {
    store.close();
  }
}

function* toPairRows(rows: Iterable<Row>): Generator<PairRow> {
  for (const r of rows) yield { key: { f: r.f, g: r.g, options: r.options, version: r.score_version }, report: r.report, created: r.created_ms };
}
