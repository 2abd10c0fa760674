/**
 * The library's options objects, one per entry point, with their defaults,
 * validated at the edge (coordinator/validate.ts). The CLI maps its flags and
 * environment variables onto these.
 */
import type { ConstantMode, MatchMode, NullRequest, Report } from '../shared/core/index.js';
import {
  checkJobName,
  natsCredentials,
  parseServiceUrl,
  redisCredentials,
  type NatsCredentials,
  type RedisCredentials,
  type TileQueueConfig,
} from '../shared/cluster/index.js';
import type { PairOptions } from '../shared/formats/index.js';
import { MODEL_KEYS, modelOptions, type ModelOptions } from './model-options.js';
export { modelOptions, type ModelOptions } from './model-options.js';
import { kernelOptions, type KernelChoice, type KernelOptions } from '../worker/kernel-options.js';
import type { NativeLoopsOptions } from '../worker/native/assist.js';
import { func, isObject, knownKeys, optional, string } from '../shared/validate.js';
import { bool, choice, LOG_LEVELS, maybeNum, num, OPTIONS, secondsOrNever, str } from '../shared/options/index.js';

/** The permutation null (the chance baseline). */
export interface NullOptionsInput {
  /** Permutations; 0 turns the null off (default 10). */
  readonly permutations?: number;
  /** Neurons sampled per direction (default: 2000, fewer to keep the null under 8% of the job's arithmetic). */
  readonly sample?: number;
  /** Seed of the permutations and the sample (default 1). */
  readonly seed?: number;
}

export interface ClusterOptions {
  /** NATS server URL (nats:// or tls://). */
  readonly nats: string;
  /** Redis server URL (redis:// or rediss://). */
  readonly redis: string;
  /** Job name; rerun with the same name to resume (default: made up and logged). */
  readonly job?: string;
  /** Put both activation sets in the NATS object store, for workers with no shared path. */
  readonly upload?: boolean;
  /** Redis key prefix (default `neurocorr`). */
  readonly prefix?: string;
  /** Seconds a worker may hold a tile without a heartbeat (default 30). */
  readonly ackWait?: number;
  /** Deliveries of a tile before the job fails (default 5). */
  readonly maxDeliver?: number;
  /** Checkpoint to Redis after this many tiles or seconds, whichever comes first (defaults 256, 5). */
  readonly checkpointTiles?: number;
  readonly checkpointSeconds?: number;
  /** Seconds a finished job stays in Redis (default 7 days). */
  readonly ttl?: number;
  /** Seconds of the coordinator's lease on its job (default 15). */
  readonly lease?: number;
  /** Serve Prometheus metrics on this port (0: any free port); none by default. */
  readonly metricsPort?: number;
  /** Address for the metrics (default 127.0.0.1). */
  readonly metricsHost?: string;
  /** Level of the coordinator's JSON logs on stderr (default `info`). */
  readonly logLevel?: string;
  /** NATS login: user and password, token, NKey seed, .creds file, TLS files (keep secrets out of the URL: it shows in `ps`). */
  readonly natsCredentials?: NatsCredentials;
  /** Redis login: username, password, TLS files. */
  readonly redisCredentials?: RedisCredentials;
  /** Seconds to keep trying an unreachable NATS or Redis, at start and mid-run, before failing (default 60). */
  readonly serviceTimeout?: number;
  /** Workers the job's super-tiles are sized for (default 16; docs/ARCHITECTURE.md, "Super-tiles"). */
  readonly workers?: number;
  /** Neurons per side of a main tile's super-tile, rounded down to whole blocks (default: sized from `workers`, M and max_payload). */
  readonly superTile?: number;
  /** Seconds without progress before the job fails as stalled (exit 5; a rerun resumes); null never gives up (default 600). */
  readonly stallTimeout?: number | null;
  /** Entries of each result computed again from the models (read by the coordinator) before it is merged (default 4; 0: trust the workers). */
  readonly verify?: number;
  /** Share of tiles another worker computes again; one found false is quarantined, its merges undone (default 0.01; off with `verify` 0). */
  readonly audit?: number;
}

/** What every scoring entry point (`score`, `zoo`) takes besides its inputs and outputs. */
export interface RunOptions extends ModelOptions {
  /** Match mode of the headline score and of `matches` (default `paper`); the report holds both. */
  readonly match?: MatchMode;
  /** Constant neurons count in the means as S = 0 (`include`, the default) or are dropped. */
  readonly constant?: ConstantMode;
  /** Tile kernel (default `auto`: native, then tfjs, then reference), or the kernel with its settings. */
  readonly kernel?: KernelChoice | KernelOptions;
  /** Standardize with the native loops where the addon loads (default true; bit-identical to the TypeScript loops). */
  readonly nativeStandardize?: boolean;
  /** Kernel threads, 1 to 1024 (default: one per core); a run uses at most 4 per core and one per main tile (coordinator/threads.ts). */
  readonly threads?: number;
  /** Neurons per block (default: chosen per kernel and M). */
  readonly tile?: number;
  /** Bytes of decoded shard-set data held at once (default 2 GiB). */
  readonly memory?: number;
  readonly null?: NullOptionsInput;
  /** Progress on stderr: a bar on a terminal, plain lines otherwise (default false). */
  readonly progress?: boolean;
  /** Seconds between plain progress lines off a terminal (default 5). */
  readonly progressInterval?: number;
  /** Where notes and warnings go (default: nowhere). */
  readonly log?: (line: string) => void;
  /** Log when each phase of the run ended (default false). */
  readonly trace?: boolean;
  /** Run on a cluster instead of this machine. */
  readonly cluster?: ClusterOptions;
}

export interface ScoreOptions extends RunOptions {
  /** Activation set of model F: a folder of .npy layers, a .safetensors file, or a shard set. */
  readonly f: string;
  /** Activation set of model G. */
  readonly g: string;
  /** Write the full JSON report here. */
  readonly out?: string;
  /** Write every neuron's best partner here, as CSV. */
  readonly matches?: string;
}

export interface PlanOptions extends ModelOptions {
  readonly f: string;
  readonly g: string;
  readonly kernel?: KernelChoice | KernelOptions;
  readonly threads?: number;
  readonly null?: NullOptionsInput;
}

export interface ScoreResult {
  readonly report: Report;
  /** The short human summary `neurocorr score` prints. */
  readonly summary: string;
}

export const DEFAULT_MEMORY = OPTIONS.memory.default;
export { LOG_LEVELS };
export const MAX_THREADS = OPTIONS.threads.max;
const O = OPTIONS;

export interface ClusterSettings {
  readonly nats: string;
  readonly redis: string;
  readonly job: string | null;
  readonly upload: boolean;
  readonly prefix: string;
  readonly queue: TileQueueConfig;
  readonly checkpointTiles: number;
  readonly checkpointSeconds: number;
  readonly ttlSeconds: number;
  readonly leaseMs: number;
  readonly metricsPort: number | null;
  readonly metricsHost: string;
  readonly logLevel: string;
  readonly natsCredentials: NatsCredentials;
  readonly redisCredentials: RedisCredentials;
  readonly serviceTimeoutMs: number;
  readonly workers: number;
  readonly superTile: number | undefined;
  readonly stallTimeoutMs: number | null;
  readonly verify: number;
  readonly audit: number;
}

/** RunOptions checked, with every default filled in. */
export interface RunSettings {
  readonly pair: PairOptions;
  readonly match: MatchMode;
  readonly constant: ConstantMode;
  readonly kernel: KernelOptions;
  /** Native standardization loops (and the addon they come from). */
  readonly standardize: NativeLoopsOptions;
  readonly threads: number | undefined;
  readonly tile: number | undefined;
  readonly memory: number;
  readonly null: NullRequest;
  readonly progress: boolean;
  /** Milliseconds (the option is in seconds). */
  readonly progressInterval: number;
  readonly log: (line: string) => void;
  readonly trace: boolean;
  readonly cluster: ClusterSettings | null;
}

/** ScoreOptions checked, with every default filled in. */
export interface ScoreSettings extends RunSettings {
  readonly f: string;
  readonly g: string;
  readonly out: string | null;
  readonly matches: string | null;
}

const NULL_KEYS = ['permutations', 'sample', 'seed'] as const;
export const RUN_KEYS = [
  ...MODEL_KEYS,
  'match',
  'constant',
  'kernel',
  'nativeStandardize',
  'threads',
  'tile',
  'memory',
  'null',
  'progress',
  'progressInterval',
  'log',
  'trace',
  'cluster',
] as const;
const PLAN_KEYS = ['f', 'g', ...MODEL_KEYS, 'kernel', 'threads', 'null'] as const;
const CLUSTER_KEYS = [
  'nats',
  'redis',
  'job',
  'upload',
  'prefix',
  'ackWait',
  'maxDeliver',
  'checkpointTiles',
  'checkpointSeconds',
  'ttl',
  'lease',
  'metricsPort',
  'metricsHost',
  'logLevel',
  'natsCredentials',
  'redisCredentials',
  'serviceTimeout',
  'workers',
  'superTile',
  'stallTimeout',
  'verify',
  'audit',
] as const;

function nullRequest(value: unknown): NullRequest {
  if (value === undefined) return { permutations: O.null.default, sample: null, seed: O.nullSeed.default };
  const o = isObject('null', value);
  knownKeys('null', o, NULL_KEYS);
  return { permutations: num(O.null, o['permutations']), sample: maybeNum(O.nullSample, o['sample']), seed: num(O.nullSeed, o['seed']) };
}

/** A service URL, checked (a bad one is refused before any connection, redacted). */
function serviceUrl(kind: 'nats' | 'redis', url: string, option: string): string {
  parseServiceUrl(kind, url, option);
  return url;
}

export const DEFAULT_STALL_TIMEOUT = O.stallTimeout.default;
export const DEFAULT_VERIFY = O.verify.default;
export const DEFAULT_AUDIT = O.audit.default;

const ms = (seconds: number | null): number | null => (seconds === null ? null : seconds * 1000);

function clusterSettings(value: unknown): ClusterSettings {
  const o = isObject('cluster', value);
  knownKeys('cluster', o, CLUSTER_KEYS);
  return {
    nats: serviceUrl('nats', string('cluster.nats', o['nats']), 'cluster.nats'),
    redis: serviceUrl('redis', string('cluster.redis', o['redis']), 'cluster.redis'),
    job: optional<string | null>(o['job'], (v) => checkJobName(string('cluster.job', v)), null),
    upload: bool(O.upload, o['upload']),
    prefix: str(O.prefix, o['prefix']),
    queue: { ackWaitMs: num(O.ackWait, o['ackWait']) * 1000, maxDeliver: num(O.maxDeliver, o['maxDeliver']) },
    checkpointTiles: num(O.checkpointTiles, o['checkpointTiles']),
    checkpointSeconds: num(O.checkpointSeconds, o['checkpointSeconds']),
    ttlSeconds: num(O.ttl, o['ttl']),
    leaseMs: num(O.lease, o['lease']) * 1000,
    metricsPort: maybeNum(O.metricsPort, o['metricsPort']),
    metricsHost: str(O.metricsHost, o['metricsHost']),
    logLevel: choice(O.logLevel, o['logLevel']),
    natsCredentials: natsCredentials('cluster.natsCredentials', o['natsCredentials']),
    redisCredentials: redisCredentials('cluster.redisCredentials', o['redisCredentials']),
    serviceTimeoutMs: num(O.serviceTimeout, o['serviceTimeout']) * 1000,
    workers: num(O.workers, o['workers']),
    superTile: maybeNum(O.superTile, o['superTile']) ?? undefined,
    stallTimeoutMs: ms(secondsOrNever(O.stallTimeout, o['stallTimeout'])),
    verify: num(O.verify, o['verify']),
    audit: num(O.audit, o['audit']),
  };
}

const noLog = (): void => undefined;

export function scoreSettings(options: ScoreOptions): ScoreSettings {
  const o = isObject('', options);
  knownKeys('', o, [...RUN_KEYS, 'f', 'g', 'out', 'matches']);
  return {
    f: string('f', o['f']),
    g: string('g', o['g']),
    ...runSettings(o),
    out: optional<string | null>(o['out'], (v) => string('out', v), null),
    matches: optional<string | null>(o['matches'], (v) => string('matches', v), null),
  };
}

/** The checked RunOptions of an options object whose keys were checked by the caller. */
export function runSettings(o: Record<string, unknown>): RunSettings {
  const kernel = kernelOptions(o['kernel']);
  return {
    pair: modelOptions(o),
    match: choice(O.match, o['match']),
    constant: choice(O.constant, o['constant']),
    kernel,
    standardize: {
      ...(kernel.addon !== undefined ? { addon: kernel.addon } : {}),
      disabled: !bool(O.nativeStandardize, o['nativeStandardize']),
    },
    threads: maybeNum(O.threads, o['threads']) ?? undefined,
    tile: maybeNum(O.tile, o['tile']) ?? undefined,
    memory: num(O.memory, o['memory']),
    null: nullRequest(o['null']),
    progress: bool(O.progress, o['progress']),
    progressInterval: num(O.progressInterval, o['progressInterval']) * 1000,
    log: optional(o['log'], (v) => func<(line: string) => void>('log', v), noLog),
    trace: bool(O.trace, o['trace']),
    cluster: o['cluster'] === undefined ? null : clusterSettings(o['cluster']),
  };
}

export interface PlanSettings {
  readonly f: string;
  readonly g: string;
  readonly pair: PairOptions;
  readonly kernel: KernelOptions;
  readonly threads: number | undefined;
  readonly null: NullRequest;
}

export function planSettings(options: PlanOptions): PlanSettings {
  const o = isObject('', options);
  knownKeys('', o, PLAN_KEYS);
  return {
    f: string('f', o['f']),
    g: string('g', o['g']),
    pair: modelOptions(o),
    kernel: kernelOptions(o['kernel']),
    threads: maybeNum(O.threads, o['threads']) ?? undefined,
    null: nullRequest(o['null']),
  };
}
