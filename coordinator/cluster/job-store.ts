/**
 * A cluster job's state in Redis: spec, checkpoint (written incrementally,
 * see checkpoint-store.ts), report, state hash and the coordinator's lease. Every write that must land together goes in one MULTI;
 * the lease is checked and renewed in Lua, so two coordinators never both
 * believe they run a job.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { CorruptStateError, JobLeasedError } from '../../shared/errors.js';
import { DEFAULT_PREFIX, jobKeys, jobsIndexKey, type JobKeys } from '../../shared/cluster/index.js';
import type { JobProgress } from '../../shared/job/index.js';
import { CheckpointStore, checkpointKeys, type CheckpointWrite } from './checkpoint-store.js';

/** `damaged`: the job's state key holds something else than its state (a key of another type, say); `jobs --delete` clears it. */
export type JobStatus = 'running' | 'done' | 'failed' | 'damaged';

export interface JobState {
  readonly job: string;
  readonly status: JobStatus;
  readonly done: number;
  readonly tiles: number;
  readonly duplicates: number;
  readonly redelivered: number;
  readonly republished: number;
  readonly created: number;
  readonly updated: number;
  readonly error: string | null;
}

// Renew when we hold the lease, re-take it when it vanished (a Redis restart), refuse when another holds it.
const RENEW = `local v = redis.call('get', KEYS[1])
if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

export class JobStore {
  readonly keys: JobKeys;
  private readonly index: string;
  readonly token = `${hostname()}:${process.pid}:${randomUUID()}`;
  readonly checkpoints: CheckpointStore;

  constructor(
    private readonly redis: Redis,
    readonly job: string,
    private readonly prefix: string,
  ) {
    this.keys = jobKeys(job, prefix);
    this.index = jobsIndexKey(prefix);
    this.checkpoints = new CheckpointStore(redis, job, prefix, (key, why, cause) => this.corruptKey(key, why, cause));
  }

  /**
   * Takes the job's lease. A coordinator that died keeps it until its TTL
   * runs out, so a restart waits that long (and says so); a live holder
   * that keeps renewing makes this fail.
   */
  async acquire(ttlMs: number, log: (line: string) => void): Promise<void> {
    const deadline = Date.now() + ttlMs + 1000;
    let said = false;
    for (;;) {
      if ((await this.redis.set(this.keys.lease, this.token, 'PX', ttlMs, 'NX')) === 'OK') return;
      const holder = await this.redis.get(this.keys.lease);
      if (Date.now() > deadline) {
        throw new JobLeasedError(
          this.job,
          (o) =>
            `job ${this.job} is being run by another coordinator (${holder ?? 'unknown'}), which renews its lease ${this.keys.lease}. Fix: wait for that run to end (\`neurocorr jobs\` shows its progress), or pick another ${o('cluster.job')}`,
        );
      }
      if (!said) log(`job ${this.job}: waiting for the lease held by ${holder ?? 'a previous coordinator'} to expire (at most ${Math.ceil(ttlMs / 1000)} s)`);
      said = true;
      await delay(Math.min(500, ttlMs / 4));
    }
  }

  /** False when another coordinator took the job. */
  async renew(ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.keys.lease, this.token, String(ttlMs))) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.keys.lease, this.token);
  }

  async spec(): Promise<string | null> {
    return this.document('spec');
  }

  async report(): Promise<string | null> {
    return this.document('report');
  }

  /** A stored JSON document; a key of another type is corrupt (GET would fail with WRONGTYPE). */
  private async document(key: 'spec' | 'report'): Promise<string | null> {
    const type = await this.redis.type(this.keys[key]);
    if (type === 'none') return null;
    if (type !== 'string') throw this.corrupt(key, `is a Redis ${type}, not the job's ${key} (a string)`);
    return this.redis.get(this.keys[key]);
  }

  /** Parses a stored JSON value; garbage is a usage error naming the key and the command that clears the job. */
  parse<T>(key: keyof JobKeys, text: string, check: (value: unknown) => value is T): T {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw this.corrupt(key, 'is not JSON');
    }
    if (!check(value)) throw this.corrupt(key, 'does not hold what this version of neurocorr wrote there');
    return value;
  }

  /** The error for a key whose value cannot be used: it names the key and how to clear the job. */
  corrupt(key: keyof JobKeys, why: string, cause?: unknown): CorruptStateError {
    return this.corruptKey(this.keys[key], why, cause);
  }

  private corruptKey(key: string, why: string, cause?: unknown): CorruptStateError {
    return new CorruptStateError(
      this.job,
      key,
      (o) =>
        `job ${this.job}: Redis key ${key} ${why}, so the job cannot be resumed. Clear it with \`neurocorr jobs --delete ${this.job} --redis URL\` (with the same ${o('cluster.prefix')}) and run it again, or use another ${o('cluster.job')}`,
      cause === undefined ? undefined : { cause },
    );
  }

  /** The job's state hash; a damaged one is corrupt (the checkpoint's writes to it would fail). */
  async state(): Promise<JobState | null> {
    const state = await readState(this.redis, this.keys, this.job, this.prefix);
    if (state?.status === 'damaged') throw this.corrupt('state', damage(await this.redis.type(this.keys.state)));
    return state;
  }

  /**
   * A checkpoint: the chunks of `progress` changed since the last one, committed
   * in one MULTI with the spec and the state hash, so a Redis that lost its data
   * gets everything back at the next checkpoint.
   */
  async save(spec: string, progress: JobProgress, fields: Omit<JobState, 'job' | 'status' | 'created' | 'updated' | 'error'>): Promise<CheckpointWrite> {
    const now = Date.now();
    return this.checkpoints.write(progress, (tx) =>
      tx
        .set(this.keys.spec, spec)
        .hsetnx(this.keys.state, 'created', now)
        .hset(this.keys.state, { status: 'running', updated: now, error: '', ...fields })
        // A rerun of a failed job: its keys had a TTL (SET clears it on the spec, the checkpoint clears its own).
        .persist(this.keys.state)
        .zadd(this.index, 'NX', now, this.job),
    );
  }

  /** The final report, and a TTL on every key of the finished job. */
  async finish(status: 'done' | 'failed', ttlSeconds: number, detail: { report?: string; error?: string }): Promise<void> {
    const checkpoint = await checkpointKeys(this.redis, this.job, this.prefix);
    const tx = this.redis.multi();
    if (detail.report !== undefined) tx.set(this.keys.report, detail.report);
    tx.hsetnx(this.keys.state, 'created', Date.now());
    tx.hset(this.keys.state, { status, updated: Date.now(), error: detail.error ?? '' });
    tx.zadd(this.index, 'NX', Date.now(), this.job);
    for (const key of [this.keys.spec, ...checkpoint, this.keys.report, this.keys.state]) tx.expire(key, ttlSeconds);
    await tx.exec();
  }
}

const STATUSES: readonly string[] = ['running', 'done', 'failed'];

const damage = (type: string): string => (type === 'hash' ? 'is a hash without a status' : `is a Redis ${type}, not the job's state (a hash)`);

/** The job's state; null when its keys are gone; status `damaged` when the key holds something else, with what and how to clear it in `error`. */
async function readState(redis: Redis, keys: JobKeys, job: string, prefix: string): Promise<JobState | null> {
  const type = await redis.type(keys.state);
  if (type === 'none') return null;
  // A key of another type (a stray SET, say) would be a WRONGTYPE error.
  const h = type === 'hash' ? await redis.hgetall(keys.state) : {};
  if (h['status'] === undefined) return damaged(job, prefix, keys.state, damage(type));
  const num = (k: string) => {
    const v = Number(h[k] ?? 0);
    return Number.isFinite(v) ? v : 0;
  };
  return {
    job,
    status: (STATUSES.includes(h['status']) ? h['status'] : 'failed') as JobStatus,
    done: num('done'),
    tiles: num('tiles'),
    duplicates: num('duplicates'),
    redelivered: num('redelivered'),
    republished: num('republished'),
    created: num('created'),
    updated: num('updated'),
    error: h['error'] ? h['error'] : null,
  };
}

function damaged(job: string, prefix: string, key: string, why: string): JobState {
  const clear = `neurocorr jobs --delete ${job}${prefix === DEFAULT_PREFIX ? '' : ` --prefix ${prefix}`}`;
  const zero = { done: 0, tiles: 0, duplicates: 0, redelivered: 0, republished: 0, created: 0, updated: 0 };
  return { job, status: 'damaged', ...zero, error: `Redis key ${key} ${why}; clear the job with \`${clear}\`` };
}

/** Removes every key of a job; true when there was something to remove. */
export async function deleteJob(redis: Redis, prefix: string, job: string): Promise<boolean> {
  const keys = jobKeys(job, prefix);
  const removed = await redis.del(keys.spec, keys.state, ...(await checkpointKeys(redis, job, prefix)), keys.report, keys.lease);
  const indexed = await redis.zrem(jobsIndexKey(prefix), job);
  return removed + indexed > 0;
}

/** Every job under the prefix, oldest first; names whose keys expired are dropped from the index. */
export async function listJobs(redis: Redis, prefix: string): Promise<JobState[]> {
  const index = jobsIndexKey(prefix);
  const names = await redis.zrange(index, 0, -1);
  const states: JobState[] = [];
  for (const job of names) {
    const state = await readState(redis, jobKeys(job, prefix), job, prefix);
    if (state === null) await redis.zrem(index, job);
    else states.push(state);
  }
  return states;
}
