/** The contract between the job driver (coordinator/job.ts) and the cluster coordinator. */
import type { ClusterInfo } from '../../shared/core/index.js';
import type { PairOptions } from '../../shared/formats/index.js';
import type { JobProgress } from '../../shared/job/index.js';
import type { Job, JobRuntime } from '../job-runtime.js';

/** What a finished cluster job knows beyond its reduction and the driver's clock. */
export interface ClusterRunInfo {
  readonly cluster: ClusterInfo;
  readonly kernel: string;
  readonly block: number;
}

/**
 * One cluster job as the driver hands it over: the models and pairs, the
 * planner and clock every executor shares, how to build its result once
 * every tile is in, and how to read the result a finished job stored.
 */
export interface ClusterJob<R> extends Job {
  readonly options: PairOptions;
  readonly tile: number | undefined;
  /** Bytes of shard-set data the coordinator may hold when it reads the models to check results. */
  readonly memory: number;
  /** Human lines (stderr on the CLI). */
  readonly log: (line: string) => void;
  readonly runtime: JobRuntime;
  /** Builds the result (and writes the front end's outputs); returns it with the JSON stored as the job's result. */
  finish(progress: JobProgress, run: ClusterRunInfo): Promise<{ readonly result: R; readonly stored: string }>;
  /** The result a finished job stored (and the front end's outputs from it); `parse` reads the stored JSON, checked by `check`. */
  restore(parse: <T>(check: (value: unknown) => value is T) => T, job: string): R;
}
