/**
 * A cluster job's checkpoint in Redis, written incrementally: each chunk of
 * the job's progress (shared/job/chunks.ts) is its own key, and a checkpoint
 * writes only the chunks merged into since the last one, so its cost follows
 * what changed, and no value nears Redis's 512 MB limit whatever the job's size.
 *
 * Why versioned keys and a manifest rather than a log of deltas: a chunk is
 * rewritten whole, so the store never grows past one copy of the state (no
 * compaction), and a restore reads each chunk once.
 *
 * A write is two steps. (1) Every marked chunk goes to a new key named by
 * its chunk and the next generation, with a TTL, listed first in a staging set. (2) One Lua script, in the
 * same MULTI as the job's spec and state hash, checks that the manifest is
 * still at the generation this write builds on and that every new key
 * exists, then names the new keys in the manifest, clears their TTL and
 * deletes the versions they replace. A crash anywhere before (2) leaves the
 * manifest naming the previous generation, whole: restoring it is safe,
 * because the results merged since were not acked and JetStream delivers
 * them again (the merge is idempotent). The new keys of a write that never
 * committed are removed by the next coordinator's restore (from the staging
 * set), or `jobs --delete`, or else expire on their own.
 *
 * Consistency without copying the state up front: the done set is encoded
 * when the chunks are taken, the state chunks later, batch by batch, so a
 * written state chunk may hold merges of tiles its done set does not yet
 * claim (they are merged again on resume: harmless), but never lacks one it
 * claims. Memory stays at one batch of chunks, not the whole state.
 */
import { randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { checkpointChunkKey, checkpointStagingKey, jobKeys, type JobKeys } from '../../shared/cluster/index.js';
import { JobFailedError, ServiceError, type CorruptStateError } from '../../shared/errors.js';
import { checkpointShape, DEFAULT_CHUNK_LENGTH, restoreCheckpoint, type JobProgress } from '../../shared/job/index.js';
import { checkEnv, readEnv, type NeurocorrEnv } from '../../shared/options/index.js';

/** How long the chunks of a write that never committed stay before Redis drops them. */
const STAGING_MS = 24 * 3600 * 1000;
/** Chunk bytes sent (and held in memory) per round trip. */
const BATCH_BYTES = 32 << 20;

// KEYS: manifest, staging set, the n new chunk keys, then the keys they replace. ARGV: expected generation ('' for none), new generation, shape, writer, n, n chunk ids.
// Returns 1 when committed (or already committed by this writer: a MULTI resent after a lost reply), 0 when the manifest is gone (Redis lost it),
// -1 when another write moved it on, -2 when a new chunk is missing.
const COMMIT = `local m = KEYS[1]
local t = redis.call('type', m)['ok']
if t == 'string' and ARGV[1] == '' then redis.call('del', m) t = 'none' end
if t ~= 'hash' and t ~= 'none' then return -1 end
local cur = ''
if t == 'hash' then cur = redis.call('hget', m, 'gen') or '' end
if cur == ARGV[2] and redis.call('hget', m, 'writer') == ARGV[4] then return 1 end
if cur ~= ARGV[1] then if cur == '' then return 0 end return -1 end
local n = tonumber(ARGV[5])
for i = 1, n do if redis.call('exists', KEYS[2 + i]) == 0 then return -2 end end
for i = 1, n do
  redis.call('persist', KEYS[2 + i])
  redis.call('hset', m, ARGV[5 + i], ARGV[2])
end
for i = n + 3, #KEYS do redis.call('unlink', KEYS[i]) end
redis.call('del', KEYS[2])
redis.call('hset', m, 'gen', ARGV[2], 'shape', ARGV[3], 'writer', ARGV[4])
redis.call('persist', m)
return 1`;

/** Neurons per chunk: NEUROCORR_CHECKPOINT_CHUNK when set (tests cut small models into many chunks with it), else the default. */
export function checkpointChunkLength(env: NeurocorrEnv = readEnv()): number {
  checkEnv(env, ['NEUROCORR_CHECKPOINT_CHUNK']);
  return env.checkpointChunk ?? DEFAULT_CHUNK_LENGTH;
}

export interface CheckpointWrite {
  /** The generation the manifest now names. */
  readonly generation: number;
  readonly chunks: number;
  /** Chunk bytes sent to Redis. */
  readonly bytes: number;
  /** True when Redis had lost the checkpoint and every chunk was written again. */
  readonly full: boolean;
}

/** Chunks written under a generation, not yet named by the manifest. */
export interface StagedCheckpoint {
  readonly generation: number;
  readonly ids: readonly number[];
  readonly bytes: number;
}

export type CorruptKey = (key: string, why: string, cause?: unknown) => CorruptStateError;

const isId = (field: string) => /^\d+$/.test(field);

/** The manifest's shape field: the job's sizes and the chunk length. */
const shapeOf = (p: JobProgress) => `${checkpointShape(p).join(',')}/${p.chunks.length}`;

export class CheckpointStore {
  private readonly keys: JobKeys;
  private readonly staging: string;
  /** The generation the manifest names (0: none yet). */
  private gen = 0;
  /** Chunk id -> the generation of its stored key. */
  private readonly versions = new Map<number, number>();
  private readonly writer = randomUUID();
  /** A commit whose reply was lost: it may have happened. */
  private unsure: StagedCheckpoint | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly job: string,
    private readonly prefix: string,
    private readonly corrupt: CorruptKey,
  ) {
    this.keys = jobKeys(job, prefix);
    this.staging = checkpointStagingKey(job, prefix);
  }

  get generation(): number {
    return this.gen;
  }

  private chunkKey(id: number, gen: number): string {
    return checkpointChunkKey(this.job, this.prefix, id, gen);
  }

  /** Restores the stored checkpoint into a fresh `p`; false when there is none. */
  async load(p: JobProgress): Promise<boolean> {
    const key = this.keys.checkpoint;
    await this.dropStaged();
    const type = await this.redis.type(key);
    if (type === 'none') return false;
    if (type === 'string') {
      // Written whole by an earlier version: the next write stores all of it in chunks and replaces it.
      const bytes = await this.redis.getBuffer(key);
      try {
        restoreCheckpoint(bytes ?? new Uint8Array(0), p);
      } catch (err) {
        throw this.corrupt(key, `holds a checkpoint that does not fit this job (${(err as Error).message})`, err);
      }
      p.chunks.markAll();
      return true;
    }
    if (type !== 'hash') throw this.corrupt(key, `is a Redis ${type}, not a checkpoint manifest`);
    const fields = await this.redis.hgetall(key);
    const shape = shapeOf(p);
    const gen = Number(fields['gen']);
    if (fields['shape'] !== shape || !Number.isInteger(gen) || gen < 1) {
      throw this.corrupt(key, `holds a checkpoint that does not fit this job (shape ${fields['shape'] ?? 'missing'}, the plan has ${shape})`);
    }
    const entries = Object.entries(fields)
      .filter(([f]) => isId(f))
      .map(([f, v]) => [Number(f), Number(v)] as const);
    for (const [id, version] of entries) {
      if (id >= p.chunks.total || !Number.isInteger(version) || version < 1 || version > gen) {
        throw this.corrupt(key, `names a chunk that does not fit this job (chunk ${id}, generation ${version})`);
      }
    }
    for (const batch of batches(entries, (e) => p.chunks.size(e[0]))) {
      const pipe = this.redis.pipeline();
      for (const [id, version] of batch) pipe.getBuffer(this.chunkKey(id, version));
      const got = await exec(pipe);
      batch.forEach(([id, version], i) => {
        const bytes = got[i] as Buffer | null;
        if (bytes === null) throw this.corrupt(this.chunkKey(id, version), 'is missing, though the checkpoint names it');
        if (!p.chunks.decode(id, bytes))
          throw this.corrupt(this.chunkKey(id, version), `holds ${bytes.byteLength} bytes, not the ${p.chunks.size(id)} of its chunk`);
      });
    }
    p.recount();
    this.gen = gen;
    for (const [id, version] of entries) this.versions.set(id, version);
    // A failed job's keys had a TTL; it runs again, so they stay.
    if ((await this.redis.pttl(key)) >= 0) {
      const pipe = this.redis.pipeline();
      for (const [id, version] of entries) pipe.persist(this.chunkKey(id, version));
      await exec(pipe.persist(key));
    }
    return true;
  }

  /**
   * Writes the chunks merged into since the last checkpoint, then names them
   * in the manifest. `extra` adds commands to the MULTI that commits them.
   * A failed write marks its chunks again, for the next one.
   */
  async write(p: JobProgress, extra?: (tx: ChainableCommander) => void): Promise<CheckpointWrite> {
    let full = false;
    for (;;) {
      const staged = await this.stage(p);
      if (await this.commit(p, staged, extra)) return { generation: this.gen, chunks: staged.ids.length, bytes: staged.bytes, full };
      if (full) throw new ServiceError('Redis', `Redis lost the checkpoint of job ${this.job} twice while it was being written`);
      // Redis lost the checkpoint (a restart without persistence): write all of it again.
      full = true;
      this.gen = 0;
      this.versions.clear();
      p.chunks.markAll();
    }
  }

  /** Step 1: the marked chunks under the next generation, with a TTL; nothing names them yet. */
  async stage(p: JobProgress): Promise<StagedCheckpoint> {
    await this.settle();
    const taken = p.chunks.take();
    const generation = this.gen + 1;
    let bytes = 0;
    try {
      for (const batch of batches(taken.ids, (id) => p.chunks.size(id))) {
        const pipe = this.redis
          .pipeline()
          .sadd(this.staging, ...batch.map((id) => this.chunkKey(id, generation)))
          .pexpire(this.staging, STAGING_MS);
        for (const id of batch) {
          const data = taken.eager.get(id) ?? p.chunks.encode(id);
          bytes += data.byteLength;
          pipe.set(this.chunkKey(id, generation), Buffer.from(data.buffer, data.byteOffset, data.byteLength), 'PX', STAGING_MS);
        }
        await exec(pipe);
      }
    } catch (err) {
      p.chunks.putBack(taken.ids);
      throw err;
    }
    return { generation, ids: taken.ids, bytes };
  }

  /** Step 2: names the staged chunks in the manifest. False when the manifest was gone (Redis lost it); the chunks are marked again. */
  async commit(p: JobProgress, staged: StagedCheckpoint, extra?: (tx: ChainableCommander) => void): Promise<boolean> {
    const { ids, generation } = staged;
    const replaced = ids.flatMap((id) => {
      const v = this.versions.get(id);
      return v === undefined || v === generation ? [] : [this.chunkKey(id, v)];
    });
    const keys = [this.keys.checkpoint, this.staging, ...ids.map((id) => this.chunkKey(id, generation)), ...replaced];
    let results: [Error | null, unknown][];
    try {
      const tx = this.redis
        .multi()
        .eval(
          COMMIT,
          keys.length,
          ...keys,
          this.gen === 0 ? '' : String(this.gen),
          String(generation),
          shapeOf(p),
          this.writer,
          String(ids.length),
          ...ids.map(String),
        );
      extra?.(tx);
      const r = await tx.exec();
      if (r === null) throw new ServiceError('Redis', 'a Redis transaction was discarded');
      results = r;
    } catch (err) {
      this.unsure = staged;
      p.chunks.putBack(ids);
      throw err;
    }
    const [err, code] = results[0]!;
    if (err) {
      p.chunks.putBack(ids);
      throw err;
    }
    if (code === 1) {
      this.committed(staged);
      // The checkpoint is in; an error of the job's other writes fails this save all the same.
      for (const [e] of results) if (e) throw e;
      return true;
    }
    p.chunks.putBack(ids);
    if (code === 0) return false;
    if (code === -1) {
      throw new JobFailedError('E_LEASE_LOST', `job ${this.job}: another coordinator wrote its checkpoint; this one stops and leaves the job to it`);
    }
    throw new ServiceError('Redis', `Redis lost chunks of job ${this.job}'s checkpoint before they were committed; the next checkpoint writes them again`);
  }

  /** Removes the chunks of writes that never committed (a coordinator that died between its two steps). */
  private async dropStaged(): Promise<void> {
    const named = new Set(await checkpointKeys(this.redis, this.job, this.prefix, false));
    const orphans = (await this.redis.smembers(this.staging)).filter((k) => !named.has(k));
    await exec(this.redis.pipeline().unlink(...orphans, this.staging));
  }

  private committed({ generation, ids }: StagedCheckpoint): void {
    this.gen = generation;
    for (const id of ids) this.versions.set(id, generation);
  }

  /** After a lost reply: reads whether that commit happened, so the next write neither reuses its generation nor misses its chunks. */
  private async settle(): Promise<void> {
    if (this.unsure === null) return;
    const [gen, writer] = (await this.redis.type(this.keys.checkpoint)) === 'hash' ? await this.redis.hmget(this.keys.checkpoint, 'gen', 'writer') : [];
    if (gen === String(this.unsure.generation) && writer === this.writer) this.committed(this.unsure);
    this.unsure = null;
  }
}

/** Every key of a job's checkpoint that Redis holds: the manifest, the chunks it names and (with `staged`) those of writes not committed. */
export async function checkpointKeys(redis: Redis, job: string, prefix: string, staged = true): Promise<string[]> {
  const key = jobKeys(job, prefix).checkpoint;
  const staging = checkpointStagingKey(job, prefix);
  const extra = staged ? [staging, ...(await redis.smembers(staging))] : [];
  if ((await redis.type(key)) !== 'hash') return [key, ...extra];
  const fields = await redis.hgetall(key);
  return [
    key,
    ...extra,
    ...Object.entries(fields)
      .filter(([f]) => isId(f))
      .map(([f, v]) => checkpointChunkKey(job, prefix, Number(f), Number(v))),
  ];
}

/** Splits `items` into runs of at most BATCH_BYTES (and at least one item). */
function batches<T>(items: readonly T[], bytes: (item: T) => number): T[][] {
  const out: T[][] = [];
  let run: T[] = [];
  let size = 0;
  for (const item of items) {
    if (run.length > 0 && size + bytes(item) > BATCH_BYTES) {
      out.push(run);
      run = [];
      size = 0;
    }
    run.push(item);
    size += bytes(item);
  }
  if (run.length > 0) out.push(run);
  return out;
}

/** Runs a pipeline or MULTI; the first command error is thrown. */
async function exec(pipe: ChainableCommander): Promise<unknown[]> {
  const results = await pipe.exec();
  if (results === null) throw new ServiceError('Redis', 'a Redis transaction was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
