/** The contract between the cluster coordinator and its front ends (`score`, `zoo`). */
import type { ClusterInfo, NullRequest } from '../../shared/core/index.js';
import type { PairOptions, PlannedSet } from '../../shared/formats/index.js';
import type { JobPairInput, JobProgress } from '../../shared/job/index.js';

/** The fields of a ClusterJob that a `score` or `zoo` run's settings give as they are. */
export function runFields(s: {
  readonly pair: PairOptions;
  readonly null: NullRequest | null;
  readonly tile: number | undefined;
  readonly memory: number;
  readonly progress: boolean;
  readonly progressInterval: number;
  readonly log: (line: string) => void;
}): Pick<ClusterJob<unknown>, 'options' | 'null' | 'tile' | 'memory' | 'progress' | 'log'> {
  return { options: s.pair, null: s.null, tile: s.tile, memory: s.memory, progress: { enabled: s.progress, intervalMs: s.progressInterval }, log: s.log };
}

/** What a finished cluster job knows beyond its reduction. */
export interface ClusterRunInfo {
  readonly cluster: ClusterInfo;
  readonly kernel: string;
  readonly block: number;
  readonly seconds: number;
  /** The workers' compute seconds on the null's tiles, summed. */
  readonly nullSeconds: number;
}

/**
 * One cluster job as its front end (`score`, `zoo`) describes it: the models
 * and pairs, how to build its result once every tile is in, and how to read
 * the result a finished job stored.
 */
export interface ClusterJob<R> {
  readonly paths: readonly string[];
  /** How messages name each model ('F', 'G', or a zoo's model names). */
  readonly labels: readonly string[];
  readonly planned: PlannedSet;
  readonly pairs: readonly JobPairInput[];
  readonly options: PairOptions;
  readonly null: NullRequest | null;
  readonly tile: number | undefined;
  /** Bytes of shard-set data the coordinator may hold when it reads the models to check results. */
  readonly memory: number;
  readonly progress: { readonly enabled: boolean; readonly intervalMs: number };
  /** Human lines (stderr on the CLI). */
  readonly log: (line: string) => void;
  /** Builds the result (and writes the front end's outputs); returns it with the JSON stored as the job's result. */
  finish(progress: JobProgress, run: ClusterRunInfo): { readonly result: R; readonly stored: string };
  /** The result a finished job stored (and the front end's outputs from it); `parse` reads the stored JSON, checked by `check`. */
  restore(parse: <T>(check: (value: unknown) => value is T) => T, job: string): R;
}
