/**
 * The jobs a worker holds open, within its `cache` bytes. A job's models
 * held whole take their standardized bytes for as long as the job is open;
 * a shard set takes at least what its tiles in flight pin (and one shard
 * more), and shares what is left of the cache with the other shard sets, up
 * to its whole size. A job is opened once room is made for it by closing
 * jobs that have no tile in flight, least recently used first; when the
 * jobs in use leave no room, it waits for one of them to fall idle. A job
 * that alone needs more than the cache is refused, naming the setting.
 */
import type { JobSpec } from '../../shared/cluster/index.js';
import { describeBytes, flagSize } from '../../shared/bytes.js';
import { UsageError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe.js';
import type { PlannedJob, WorkerJob } from './job.js';

export interface CacheDeps {
  /** The job's plan from its spec in the KV bucket; null when the job is gone or the spec is not the tile's. */
  plan(job: string, spec: string): Promise<PlannedJob | null>;
  /** Reads and standardizes a planned job, with these shard-set budgets. */
  load(planned: PlannedJob, budgets: readonly (number | null)[], keyBase: number, beat: () => void): Promise<WorkerJob>;
  /** Says which jobs were closed to make room, and when a job waits for room. */
  readonly log: Logger;
}

export interface CachedJob {
  readonly job: WorkerJob;
  /** The tile is done with the job. */
  release(): void;
}

interface Entry {
  readonly key: string;
  readonly job: string;
  readonly keyBase: number;
  ready: Promise<WorkerJob | null>;
  planned: PlannedJob | null;
  opened: WorkerJob | null;
  /** Per model: a shard set's budget now (null for a model held whole). */
  budgets: (number | null)[];
  /** Tiles using the job now (its load included). */
  active: number;
  usedAt: number;
}

/** Bytes a planned job takes at least: its whole models and each shard set's least. */
const least = (p: PlannedJob): number => p.fixedBytes + p.shards.reduce((sum, s) => sum + (s?.least ?? 0), 0);

export class JobCache {
  private readonly entries = new Map<string, Entry>();
  private waiters: (() => void)[] = [];
  private serial = 0;

  constructor(
    /** The `cache` option: bytes the open jobs may hold together. */
    private readonly cache: number,
    private readonly deps: CacheDeps,
  ) {}

  /** Bytes the open jobs may hold (whole models and shard-set budgets). */
  get bytes(): number {
    let sum = 0;
    for (const e of this.entries.values()) if (e.planned !== null) sum += e.planned.fixedBytes + e.budgets.reduce<number>((s, b) => s + (b ?? 0), 0);
    return sum;
  }

  /** Jobs open now (or opening). */
  get size(): number {
    return this.entries.size;
  }

  /** The jobs open now. */
  opened(): WorkerJob[] {
    return [...this.entries.values()].flatMap((e) => (e.opened === null ? [] : [e.opened]));
  }

  /** The job of a tile, opened if it is not (making room first); null when the job is gone. */
  async acquire(job: string, spec: string, beat: () => void): Promise<CachedJob | null> {
    const key = `${job}/${spec}`;
    let entry = this.entries.get(key);
    if (entry === undefined) {
      // Kernel keys of different jobs must differ (TileRunner): a per-job base, a multiple of 2^40, wrapping under 2^53.
      const created: Entry = {
        key,
        job,
        keyBase: (++this.serial % 8192) * 2 ** 40,
        ready: Promise.resolve(null),
        planned: null,
        opened: null,
        budgets: [],
        active: 0,
        usedAt: 0,
      };
      created.ready = this.open(created, spec, beat);
      this.entries.set(key, created);
      entry = created;
    }
    entry.active++;
    entry.usedAt = performance.now();
    const opened = await entry.ready.catch((err: unknown) => {
      this.release(entry);
      throw err;
    });
    if (opened === null) {
      this.release(entry);
      return null;
    }
    return { job: opened, release: () => this.release(entry) };
  }

  /** Closes the idle jobs whose names are not in `live` (their coordinators removed them). */
  retain(live: ReadonlySet<string>): void {
    for (const entry of [...this.entries.values()]) if (entry.active === 0 && entry.opened !== null && !live.has(entry.job)) this.close(entry);
  }

  private release(entry: Entry): void {
    entry.active--;
    entry.usedAt = performance.now();
    if (entry.active === 0) this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private close(entry: Entry): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    this.rebalance();
    this.wake();
  }

  private async open(entry: Entry, spec: string, beat: () => void): Promise<WorkerJob | null> {
    try {
      const planned = await this.deps.plan(entry.job, spec);
      if (planned === null) {
        this.close(entry);
        return null;
      }
      this.refuseTooLarge(planned.spec, planned);
      await this.makeRoom(entry, planned);
      this.rebalance();
      const opened = await this.deps.load(planned, entry.budgets, entry.keyBase, beat);
      entry.opened = opened;
      this.rebalance();
      return opened;
    } catch (err) {
      this.close(entry);
      throw err;
    }
  }

  private refuseTooLarge(spec: JobSpec, planned: PlannedJob): void {
    const need = least(planned);
    if (need <= this.cache) return;
    const sets = planned.shards.filter((s) => s !== null);
    const parts = [
      ...(planned.fixedBytes > 0 ? [`${describeBytes(planned.fixedBytes)} for the models held whole`] : []),
      ...sets.map(
        (s) => `${describeBytes(s.least)} for shard set ${s.path} (its largest shard, ${describeBytes(s.shardBytes)}, once per tile in flight and one more)`,
      ),
    ];
    throw new UsageError(
      (o) =>
        `job ${spec.job} needs at least ${describeBytes(need)} of this worker's cache (${parts.join('; ')}), but its ${o('cache')} is ${describeBytes(this.cache)}: ` +
        `start the worker with ${o('cache')} ${flagSize(need)} or more${sets.length > 0 ? `, fewer tiles in flight (${o('inflight')}), or prepare the shard sets with smaller shards (prepare --shard-neurons)` : ''}`,
    );
  }

  /** Reserves the job's least bytes, closing idle jobs (least recently used first), or waiting for jobs in use to fall idle. */
  private async makeRoom(entry: Entry, planned: PlannedJob): Promise<void> {
    const need = least(planned);
    for (let said = false; ; said = true) {
      let used = 0;
      for (const e of this.entries.values()) if (e !== entry && e.planned !== null) used += least(e.planned);
      const idle = [...this.entries.values()].filter((e) => e !== entry && e.active === 0 && e.opened !== null).sort((a, b) => a.usedAt - b.usedAt);
      for (const e of idle) {
        if (used + need <= this.cache) break;
        this.entries.delete(e.key);
        used -= least(e.planned!);
        this.deps.log.info({ closed: e.job, for: entry.job }, 'closed an idle job to make room in the cache');
      }
      if (used + need <= this.cache) {
        entry.planned = planned;
        entry.budgets = planned.shards.map((s) => (s === null ? null : s.least));
        return;
      }
      if (!said) this.deps.log.info({ job: entry.job, need, used, cache: this.cache }, 'waiting for jobs in use to fall idle to make room in the cache');
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Shares the cache left after every open job's least between their shard sets, evenly, each up to its whole set. */
  private rebalance(): void {
    const sets: { entry: Entry; k: number; least: number; room: number }[] = [];
    let spare = this.cache;
    for (const entry of this.entries.values()) {
      if (entry.planned === null) continue;
      spare -= least(entry.planned);
      entry.planned.shards.forEach((s, k) => {
        if (s !== null) sets.push({ entry, k, least: s.least, room: Math.max(0, s.full - s.least) });
      });
    }
    sets.sort((a, b) => a.room - b.room);
    spare = Math.max(0, spare);
    sets.forEach((set, i) => {
      const extra = Math.min(set.room, Math.floor(spare / (sets.length - i)));
      spare -= extra;
      set.entry.budgets[set.k] = set.least + extra;
      set.entry.opened?.sources[set.k]?.stream?.setBudget(set.least + extra);
    });
  }
}
