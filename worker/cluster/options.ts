/** The worker's options object, checked at the edge, with its defaults. */
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { checkWorkerId, natsCredentials, parseServiceUrl, workerId, type NatsCredentials } from '../../shared/cluster/index.js';
import { isObject, knownKeys, optional, string } from '../../shared/validate.js';
import { bool, choice, maybeNum, maybeStr, num, OPTIONS, str } from '../../shared/options/index.js';
import { kernelOptions, type KernelChoice, type KernelOptions } from '../kernel-options.js';
import type { NativeLoopsOptions } from '../native/assist.js';
import { OptionTypeError, UsageError } from '../../shared/errors.js';
import { defaultThreads, maxThreads } from '../pool.js';

export interface WorkerOptions {
  /** NATS server URL (nats:// or tls://). */
  readonly nats: string;
  /**
   * This worker's identity, the last token of the subject it publishes
   * results on (`neurocorr.results.<job>.<id>`): letters, digits, _ and -.
   * Give each worker a NATS user allowed only its own token, and a stolen
   * credential can speak for one worker alone (default: host name and pid).
   */
  readonly id?: string;
  /** NATS login: user and password, token, NKey seed, .creds file, TLS files (keep secrets out of the URL: it shows in `ps`). */
  readonly natsCredentials?: NatsCredentials;
  /**
   * Folders whose files jobs may name by path (a shared volume). A job's path
   * must resolve inside one of them; with none (the default), the worker
   * serves only jobs whose inputs are in the NATS object store (`upload`).
   */
  readonly dataRoots?: readonly string[];
  /** Kernel threads (default: one per core; at most 4 per core, as an embedded run). */
  readonly threads?: number;
  /** Tiles pulled and held at once (default: 2 per thread; at most INFLIGHT_PER_THREAD per thread). */
  readonly inflight?: number;
  /**
   * Bytes the jobs this worker holds open may take together (default 2 GiB):
   * models held whole, and each shard set's cache. Idle jobs are closed to
   * make room; a job that alone needs more is refused.
   */
  readonly cache?: number;
  /** Where object-store sets are downloaded; made private (0700) (default: ~/.cache/neurocorr). */
  readonly cacheDir?: string;
  /** Tile kernel (default `auto`), or the kernel with its settings. */
  readonly kernel?: KernelChoice | KernelOptions;
  /** Standardize with the native loops where the addon loads (default true). */
  readonly nativeStandardize?: boolean;
  /** Serve Prometheus metrics on this port (0: any free port); none by default. */
  readonly metricsPort?: number;
  /** Address for the metrics (default 127.0.0.1). */
  readonly metricsHost?: string;
  /** Level of the worker's JSON logs on stderr (default `info`). */
  readonly logLevel?: string;
  /** Seconds to keep trying an unreachable NATS, at start and mid-run, before the worker exits (default 60). */
  readonly serviceTimeout?: number;
  /**
   * Seconds a lane may go without progress on a tile before it stops
   * extending the tile's lease, at least (default 300): the bound is 10x the
   * step's expected time at this worker's measured rate, never less.
   */
  readonly tileTimeout?: number;
}

const WORKER_KEYS = [
  'nats',
  'id',
  'natsCredentials',
  'dataRoots',
  'threads',
  'inflight',
  'cache',
  'cacheDir',
  'kernel',
  'nativeStandardize',
  'metricsPort',
  'metricsHost',
  'logLevel',
  'serviceTimeout',
  'tileTimeout',
] as const;

export interface WorkerSettings {
  readonly nats: string;
  readonly id: string;
  readonly natsCredentials: NatsCredentials;
  readonly dataRoots: readonly string[];
  readonly threads: number;
  readonly inflight: number;
  /** Bytes the open jobs may hold together (the `cache` option). */
  readonly cache: number;
  readonly cacheDir: string;
  readonly kernel: KernelOptions;
  readonly standardize: NativeLoopsOptions;
  readonly metricsPort: number | null;
  readonly metricsHost: string;
  readonly logLevel: string;
  readonly serviceTimeoutMs: number;
  readonly tileTimeoutMs: number;
}

export const DEFAULT_TILE_TIMEOUT = OPTIONS.tileTimeout.default;
const O = OPTIONS;

/**
 * The most tiles a worker holds per kernel thread. Tiles past its threads only
 * wait for one while their leases run, and each counts in what the job cache
 * must hold for a shard set: thousands of lanes on a few threads hold every
 * job's tiles and compute nothing.
 */
export const INFLIGHT_PER_THREAD = 8;

/** The default cache: private, in the user's cache folder (not a predictable name under /tmp). */
export const defaultCacheDir = (): string => join(homedir(), '.cache', 'neurocorr');

/** The NATS URL, checked before any connection (a bad one is refused, redacted). */
function checkedUrl(url: string): string {
  parseServiceUrl('nats', url, 'nats');
  return url;
}

export function workerSettings(options: WorkerOptions): WorkerSettings {
  const o = isObject('', options);
  knownKeys('', o, WORKER_KEYS);
  const requested = maybeNum(O.threads, o['threads']) ?? defaultThreads();
  const threads = Math.min(requested, maxThreads());
  const inflight = maybeNum(O.inflight, o['inflight']) ?? 2 * threads;
  if (inflight > INFLIGHT_PER_THREAD * threads) {
    const capped = threads < requested ? ` (${requested} asked for, capped at 4 per core)` : '';
    throw new UsageError(
      (n) =>
        `${n('inflight')} ${inflight} holds more than ${INFLIGHT_PER_THREAD} tiles per kernel thread for ${threads} thread(s)${capped}: the rest would only wait, holding their leases; give ${n('inflight')} ${INFLIGHT_PER_THREAD * threads} or fewer`,
    );
  }
  const kernel = kernelOptions(o['kernel']);
  const roots = o['dataRoots'] === undefined ? [] : o['dataRoots'];
  if (!Array.isArray(roots)) throw new OptionTypeError('dataRoots', `must be an array of folder paths, got ${typeof roots}`);
  return {
    nats: checkedUrl(string('nats', o['nats'])),
    id: optional(o['id'], (v) => checkWorkerId(string('id', v)), workerId(`${hostname()}-${process.pid}`)),
    natsCredentials: natsCredentials('natsCredentials', o['natsCredentials']),
    dataRoots: roots.map((r, k) => resolve(string(`dataRoots[${k}]`, r))),
    threads,
    inflight,
    cache: num(O.cache, o['cache']),
    cacheDir: resolve(maybeStr(O.cacheDir, o['cacheDir']) ?? defaultCacheDir()),
    kernel,
    standardize: {
      ...(kernel.addon !== undefined ? { addon: kernel.addon } : {}),
      disabled: !bool(O.nativeStandardize, o['nativeStandardize']),
    },
    metricsPort: maybeNum(O.metricsPort, o['metricsPort'], 'metricsPort'),
    metricsHost: str(O.metricsHost, o['metricsHost'], 'metricsHost'),
    logLevel: choice(O.logLevel, o['logLevel'], 'logLevel'),
    serviceTimeoutMs: num(O.serviceTimeout, o['serviceTimeout'], 'serviceTimeout') * 1000,
    tileTimeoutMs: num(O.tileTimeout, o['tileTimeout']) * 1000,
  };
}
