/**
 * neurocorr's library API. Each entry point takes one options object,
 * validated at the edge: a wrong type is a TypeError and a value out of range
 * a RangeError, each naming the option; problems with inputs, services or
 * jobs reject with a NeurocorrError whose `code` and `exitCode` say which
 * (shared/errors.ts). The `neurocorr` command line is a thin layer over this.
 */
export { score, type ScoreResult } from './coordinator/score.js';
export { plan, planSummary, type Plan } from './coordinator/plan.js';
export { prepare, type PrepareOptions, type PrepareResult } from './prepare/prepare.js';
export { extract, listLayers, type ExtractOptions, type ExtractResult, type LayerListing } from './extract/extract.js';
export type { ImageLayout, ModelFormat, ModelInputInfo, ModelLayerInfo, ModelRunner, OpenRunner, RunnerOptions } from './extract/runner.js';
export { zoo, type ZooRunResult } from './zoo/zoo.js';
export type { ZooModelInput, ZooOptions } from './zoo/options.js';
export type { ZooExtractionCounts, ZooModel, ZooPair, ZooResult } from './zoo/types.js';
export { startWorker, type RunningWorker, type WorkerOptions } from './worker/cluster/worker.js';
export { initQueue, type QueueInitOptions, type QueueInitResult } from './coordinator/cluster/queue-init.js';
export type { ClusterOptions, ModelOptions, NullOptionsInput, PlanOptions, RunOptions, ScoreOptions } from './coordinator/options.js';
export type { KernelChoice } from './worker/loader.js';
export type { KernelOptions, TfjsBackend } from './worker/kernel-options.js';
export type { NatsCredentials, RedisCredentials, TlsFiles } from './shared/cluster/index.js';
export type { Preprocess } from './extract/pixels.js';
export {
  humanSummary,
  type ChanceInfo,
  type ChanceLevel,
  type ClusterInfo,
  type ConstantMode,
  type ConvMode,
  type DirectionNull,
  type DirectionScores,
  type IoInfo,
  type LayerRow,
  type Layout,
  type MatchMode,
  type NullReport,
  type NullStat,
  type PartialInfo,
  type Report,
  type Scope,
  type SpatialPooling,
  type StreamStatsInfo,
} from './shared/core/index.js';
export {
  CorruptStateError,
  InputError,
  InternalError,
  JobFailedError,
  JobLeasedError,
  JobStalledError,
  KernelUnavailableError,
  NeurocorrError,
  OptionRangeError,
  OptionTypeError,
  ServiceError,
  UsageError,
  type ErrorCode,
  type ExitCode,
  type OptionErrorCode,
} from './shared/errors.js';
