/**
 * better-sqlite3, loaded when a results store is opened rather than when
 * this module is: it is a native module built at install time
 * (zoo/build-sqlite.mjs), and a failed build must not stop the
 * commands that never open a store.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { InternalError } from '../shared/errors.js';

export type Database = BetterSqlite3.Database;
export type DatabaseOptions = BetterSqlite3.Options;

let constructor: typeof BetterSqlite3 | null = null;

export function openDatabase(path: string, options: DatabaseOptions): Database {
  constructor ??= load();
  return new constructor(path, options);
}

function load(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (err) {
    throw new InternalError(
      `the zoo's results store needs better-sqlite3, which is not installed or not built for Node ${process.version} (${err instanceof Error ? err.message.split('\n')[0] : String(err)}). Fix: run \`npm rebuild\` in neurocorr's folder, which builds it from source (see docs/DEVELOPMENT.md, "Set up and test")`,
      { cause: err },
    );
  }
}

/** The SQLite result code of an error better-sqlite3 threw (SQLITE_BUSY, SQLITE_NOTADB...), or null. */
export function sqliteCode(err: unknown): string | null {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_') ? err.code : null;
}
