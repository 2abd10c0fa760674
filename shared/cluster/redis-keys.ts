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
  /** The reduction state and the set of done tiles (binary, see shared/checkpoint.ts). */
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

/** Sorted set of job names, scored by creation time. */
export function jobsIndexKey(prefix = DEFAULT_PREFIX): string {
  return `${prefix}:jobs`;
}
