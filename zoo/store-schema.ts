/**
 * The results store's file: a SQLite database in WAL mode (readers never
 * wait for the writer), its tables, and the schema version in `meta`, checked
 * on every open so that a store written by a newer neurocorr is refused
 * rather than misread.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError, NeurocorrError } from '../shared/errors.js';
import { requireRegularFile } from '../shared/formats/index.js';
import { openDatabase, sqliteCode, type Database } from './sqlite.js';

export const STORE_FORMAT = 'neurocorr-zoo-store';
export const SCHEMA_VERSION = 1;

/** How long a statement waits for another connection's write lock (a contender taking the lease, a heartbeat) before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 10_000;

const TABLES = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pairs (
  id INTEGER PRIMARY KEY,
  f TEXT NOT NULL,
  g TEXT NOT NULL,
  options TEXT NOT NULL,
  score_version INTEGER NOT NULL,
  report TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  UNIQUE (f, g, options, score_version)
);
CREATE TABLE lease (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  owner TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  scope TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL
);
CREATE TABLE file_hashes (
  path TEXT PRIMARY KEY,
  size TEXT NOT NULL,
  mtime_ns TEXT NOT NULL,
  ctime_ns TEXT NOT NULL,
  ino TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  hashed_ms INTEGER NOT NULL
);
`;

const STORE_FIX = 'give the path of a zoo results store (a writer creates a new one where no file is)';

/**
 * Opens the store at `path`: a writer creates it when no file is there (its
 * folder must exist); a reader needs it to exist and opens it read-only.
 */
export function openStoreFile(path: string, writer: boolean): Database {
  checkPath(path, writer);
  let db: Database;
  try {
    db = openDatabase(path, { readonly: !writer, fileMustExist: !writer, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw storeError(path, err);
  }
  try {
    if (writer) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new InputError(
          'E_INPUT_FORMAT',
          path,
          `SQLite cannot use WAL mode there (journal mode stays ${String(mode)})`,
          'put the store on a local disk or block volume',
        );
      }
      // Each put is on disk when it returns: a crash loses no finished pair.
      db.pragma('synchronous = FULL');
    }
    checkSchema(db, path, writer);
    return db;
  } catch (err) {
    db.close();
    throw storeError(path, err);
  }
}

function checkPath(path: string, writer: boolean): void {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (stats !== undefined) return requireRegularFile(path, stats);
  if (!writer) throw new InputError('E_INPUT_MISSING', path, 'no results store is there', STORE_FIX);
  const dir = dirname(resolve(path));
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new InputError('E_INPUT_MISSING', path, `its folder ${dir} does not exist`, 'create the folder first');
}

function checkSchema(db: Database, path: string, writer: boolean): void {
  const tables = () => db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
  if (tables().length === 0) {
    if (!writer) throw new InputError('E_INPUT_FORMAT', path, 'is an empty database, not a zoo results store', STORE_FIX);
    // Two writers may both find the file empty: the first to get the write lock creates the tables.
    db.transaction(() => {
      if (tables().length > 0) return;
      db.exec(TABLES);
      const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      put.run('format', STORE_FORMAT);
      put.run('schema', String(SCHEMA_VERSION));
      put.run('created', new Date().toISOString());
    }).immediate();
  }
  if (!tables().includes('meta')) throw new InputError('E_INPUT_FORMAT', path, 'is a SQLite database but not a zoo results store (no meta table)', STORE_FIX);
  const meta = new Map(
    db
      .prepare<[], { key: string; value: string }>('SELECT key, value FROM meta')
      .all()
      .map((r) => [r.key, r.value]),
  );
  if (meta.get('format') !== STORE_FORMAT)
    throw new InputError('E_INPUT_FORMAT', path, `is not a zoo results store (meta.format is not "${STORE_FORMAT}")`, STORE_FIX);
  const schema = Number(meta.get('schema'));
  if (!Number.isSafeInteger(schema) || schema < 1)
    throw new InputError('E_INPUT_FORMAT', path, `has an invalid schema version ${JSON.stringify(meta.get('schema'))}`, STORE_FIX);
  if (schema > SCHEMA_VERSION) {
    throw new InputError(
      'E_INPUT_FORMAT',
      path,
      `was written by a newer neurocorr (results store schema ${schema}; this neurocorr reads schema ${SCHEMA_VERSION})`,
      'run the neurocorr that wrote it (or a newer one), or give another store path',
    );
  }
}

/** A store's failure as a typed error naming its file: SQLite's own errors (not a database, corrupt, no permission) are the user's to fix. */
export function storeError(path: string, err: unknown): Error {
  if (err instanceof NeurocorrError) return err;
  const code = sqliteCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new InputError(
      'E_INPUT_FORMAT',
      path,
      `is not a usable SQLite database (${code}: ${message})`,
      `${STORE_FIX}; a damaged store can be deleted (its pairs are computed again)`,
      { cause: err },
    );
  }
  if (code?.startsWith('SQLITE_CANTOPEN') || code?.startsWith('SQLITE_READONLY') || code?.startsWith('SQLITE_PERM') || code?.startsWith('SQLITE_IOERR')) {
    return new InputError(
      'E_INPUT_MISSING',
      path,
      `cannot be opened or written (${code}: ${message})`,
      'check that the file and its folder exist and are writable, on a local or block volume (SQLite in WAL mode needs one host)',
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(message);
}
