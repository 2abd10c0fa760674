/**
 * One writer per results store: a lease row (owner, pid, host, started,
 * heartbeat) taken in an IMMEDIATE transaction, so two contenders are
 * serialized by SQLite's own write lock; renewed by a heartbeat; checked and
 * renewed again inside every write, so a writer that lost it writes nothing
 * more. Readers take no lease and never wait.
 *
 * A lease is taken over when its holder is gone: its process is dead (judged
 * only where pids mean the same thing: same host, same pid namespace, same
 * boot), or its heartbeat is older than `stale`. Pods of a Kubernetes
 * CronJob have their own hostnames and pid namespaces, so between them only
 * the heartbeat counts (clocks must agree to well within `stale`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { JobFailedError, UsageError } from '../shared/errors.js';
import { sqliteCode, type Database } from './sqlite.js';
import { BUSY_TIMEOUT_MS } from './store-schema.js';

/** How long one try to take the lease waits for SQLite's write lock, and between tries (ms). */
const TRY_MS = 100;

/** A heartbeat older than this (ms) means the writer is gone. */
export const DEFAULT_STALE_MS = 120_000;

export interface LeaseHolder {
  readonly pid: number;
  readonly host: string;
  /** When it took the lease, and when it last renewed it (ms since the epoch). */
  readonly started: number;
  readonly heartbeat: number;
}

/** Another writer holds the store (exit 2): the message says who, since when, and what to do. */
export class StoreBusyError extends UsageError {
  constructor(
    readonly file: string,
    readonly holder: LeaseHolder | null,
    waited: number,
    stale: number,
  ) {
    const who =
      holder === null
        ? 'another writer (its write lock outlasted the wait)'
        : `pid ${holder.pid} on ${holder.host} since ${new Date(holder.started).toISOString()} (last heartbeat ${((Date.now() - holder.heartbeat) / 1000).toFixed(0)} s ago)`;
    super(
      `${file}: the results store is being written by ${who}; waited ${(waited / 1000).toFixed(1)} s. Fix: let that run finish, or wait longer; a writer that died is taken over once its heartbeat is ${(stale / 1000).toFixed(0)} s old (at once on its own host)`,
    );
  }
}

interface LeaseRow {
  owner: string;
  pid: number;
  host: string;
  scope: string;
  started_ms: number;
  heartbeat_ms: number;
}

export interface LeaseOptions {
  /** How long (ms) to wait for a live holder to let go before refusing. */
  readonly wait: number;
  readonly stale: number;
}

export class WriterLease {
  private readonly timer: NodeJS.Timeout;
  private lost = false;

  private constructor(
    private readonly db: Database,
    private readonly file: string,
    private readonly stale: number,
    private readonly token: string,
    /** The holder whose lease was taken over, or null. */
    readonly tookOver: LeaseHolder | null,
  ) {
    this.timer = setInterval(() => this.renew(), Math.max(10, Math.floor(stale / 4)));
    this.timer.unref();
  }

  static async acquire(db: Database, file: string, options: LeaseOptions): Promise<WriterLease> {
    const start = Date.now();
    const token = `${hostname()}:${process.pid}:${randomUUID()}`;
    const take = db.transaction((): { holder: LeaseHolder | null; tookOver: LeaseHolder | null } => {
      const row = db.prepare<[], LeaseRow>('SELECT owner, pid, host, scope, started_ms, heartbeat_ms FROM lease WHERE id = 1').get();
      const now = Date.now();
      if (row !== undefined && !gone(row, now, options.stale)) return { holder: holderOf(row), tookOver: null };
      db.prepare('INSERT OR REPLACE INTO lease (id, owner, pid, host, scope, started_ms, heartbeat_ms) VALUES (1, ?, ?, ?, ?, ?, ?)').run(
        token,
        process.pid,
        hostname(),
        SCOPE,
        now,
        now,
      );
      return { holder: null, tookOver: row === undefined ? null : holderOf(row) };
    });
    // While contending, a write lock held by another process (a long import) fails a try quickly, so `wait` is kept.
    db.pragma(`busy_timeout = ${TRY_MS}`);
    try {
      for (;;) {
        let outcome: { holder: LeaseHolder | null; tookOver: LeaseHolder | null } | 'locked';
        try {
          outcome = take.immediate();
        } catch (err) {
          if (sqliteCode(err) !== 'SQLITE_BUSY') throw err;
          outcome = 'locked';
        }
        if (outcome !== 'locked' && outcome.holder === null) return new WriterLease(db, file, options.stale, token, outcome.tookOver);
        const waited = Date.now() - start;
        if (waited >= options.wait) throw new StoreBusyError(file, outcome === 'locked' ? null : outcome.holder, waited, options.stale);
        await delay(Math.min(TRY_MS, options.wait - waited));
      }
    } finally {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /**
   * Inside a write transaction: renews the heartbeat, or throws (exit 4)
   * when another writer took the lease, so nothing more is written.
   */
  confirm(): void {
    if (!this.lost && this.touch()) return;
    this.lost = true;
    throw new JobFailedError(
      'E_LEASE_LOST',
      `${this.file}: another writer took over this results store (this one's heartbeat was more than ${(this.stale / 1000).toFixed(0)} s old: was the process stopped or suspended?); nothing more was written. Fix: run again once that writer is done`,
    );
  }

  /** Renews the heartbeat (every stale / 4 ms, from a timer). */
  renew(): void {
    if (this.lost) return;
    try {
      if (!this.touch()) this.lost = true;
    } catch {
      // busy with another connection's write, or a passing I/O error: the next beat tries again
    }
  }

  release(): void {
    clearInterval(this.timer);
    if (!this.db.open) return;
    try {
      this.db.prepare('DELETE FROM lease WHERE id = 1 AND owner = ?').run(this.token);
    } catch {
      // the next writer takes it over once its heartbeat is stale
    }
  }

  private touch(): boolean {
    return this.db.prepare('UPDATE lease SET heartbeat_ms = ? WHERE id = 1 AND owner = ?').run(Date.now(), this.token).changes === 1;
  }
}

function holderOf(row: LeaseRow): LeaseHolder {
  return { pid: row.pid, host: row.host, started: row.started_ms, heartbeat: row.heartbeat_ms };
}

/** Whether the holder of `row` is gone: dead where its pid can be checked, or silent for longer than `stale`. */
function gone(row: LeaseRow, now: number, stale: number): boolean {
  if (now - row.heartbeat_ms > stale) return true;
  return row.scope === SCOPE && !alive(row.pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Where a pid names the same process: this host, pid namespace and boot. On
 * a system without /proc, the hostname alone.
 */
const SCOPE = [hostname(), readOr(() => readlinkSync('/proc/self/ns/pid')), readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim())].join(
  ' ',
);

function readOr(read: () => string): string {
  try {
    return read();
  } catch {
    return '';
  }
}
