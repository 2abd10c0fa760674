/**
 * Every Redis key neurocorr uses, built in one place. A job's keys share the
 * hash tag `{job}`, so they live in one slot and MULTI spans them on a Redis
 * Cluster too. Tests give each run its own prefix.
 */
export const DEFAULT_PREFIX = 'neurocorr';

export interface JobKeys {
  /** The job spec (JSON), as first planned. */
  readonly spec: string;
  /** Hash: status, done, tiles, duplicates, redelivered, timestamps, error. */
  readonly state: string;
  /**
   * Hash: the checkpoint's manifest (generation, shape, and the generation
   * of each stored chunk, see coordinator/cluster/checkpoint-store.ts).
   * Earlier versions kept the whole checkpoint here as one binary string.
   */
  readonly checkpoint: string;
  /** The final report (JSON). */
  readonly report: string;
  /** Held by the coordinator running the job (token with a TTL). */
  readonly lease: string;
}

export function jobKeys(job: string, prefix = DEFAULT_PREFIX): JobKeys {
  const base = `${prefix}:{${job}}`;
  return { spec: `${base}:spec`, state: `${base}:state`, checkpoint: `${base}:checkpoint`, report: `${base}:report`, lease: `${base}:lease` };
}

/** One chunk of a job's checkpoint, as written by generation `gen` (binary, see shared/job/chunks.ts). */
export function checkpointChunkKey(job: string, prefix: string, chunk: number, gen: number): string {
  return `${jobKeys(job, prefix).checkpoint}:${chunk}:${gen}`;
}

/** Set of the chunk keys written for a checkpoint not yet committed (so a crashed write's keys can be found and removed). */
export function checkpointStagingKey(job: string, prefix: string): string {
  return `${jobKeys(job, prefix).checkpoint}:staging`;
}

/** Sorted set of job names, scored by creation time. */
export function jobsIndexKey(prefix = DEFAULT_PREFIX): string {
  return `${prefix}:jobs`;
}
