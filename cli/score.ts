/** `neurocorr score`, `coordinator` and `plan`: flags mapped onto the library's ScoreOptions and PlanOptions. */
import { Option, type Command } from 'commander';
import {
  DEFAULT_STALL_TIMEOUT,
  DEFAULT_VERIFY,
  DEFAULT_AUDIT,
  type ClusterOptions,
  type ModelOptions,
  type NullOptionsInput,
  type RunOptions,
  type ScoreOptions,
} from '../coordinator/options.js';
import { DEFAULT_PREFIX } from '../shared/cluster/index.js';
import { DEFAULT_NULL } from '../shared/core/index.js';
import { UsageError } from '../shared/errors.js';
import { KERNEL_CHOICES, type KernelChoice, type KernelOptions } from '../worker/kernel-options.js';
import { kernelFromEnv, type CliEnv } from './env.js';
import { durationOrNone, integerOption, listOption, numberOption, sizeOption, spatialOption } from './options.js';
import { LAYOUTS, MAX_SPATIAL, type Layout } from '../shared/core/index.js';
import { addNatsFlags, addRedisFlags, addServiceTimeout, natsCredentials, redisCredentials, type NatsFlags, type RedisFlags } from './services.js';
import type { Io } from './io.js';
import { cleanOnSignals } from './signals.js';

export interface PairFlags {
  conv: 'units' | 'channels';
  layout?: Layout;
  spatial?: number | 'min';
  layers?: string[];
  layersF?: string[];
  layersG?: string[];
  sample?: number;
  seed?: number;
  probes?: number;
  threads?: number;
  kernel: KernelChoice;
  null: number;
  nullSample?: number;
  nullSeed: number;
}

/** Flags of every scoring command (`score`, `coordinator`, `zoo`). */
export interface RunFlags extends PairFlags, NatsFlags, RedisFlags {
  match: 'paper' | 'penalized';
  constant: 'include' | 'exclude';
  tile?: number;
  json?: boolean;
  memory?: number;
  progress: boolean;
  nats?: string;
  redis?: string;
  job?: string;
  upload?: boolean;
  prefix: string;
  ackWait: number;
  maxDeliver: number;
  checkpointTiles: number;
  checkpointSeconds: number;
  ttl: number;
  lease: number;
  metricsPort?: number;
  metricsHost: string;
  workers: number;
  superTile?: number;
  stallTimeout: number | null;
  verify: number;
  audit: number;
}

interface ScoreFlags extends RunFlags {
  out?: string;
  matches?: string;
}

/**
 * What selects and shapes the neurons, the kernel, and the permutation null:
 * shared by score, coordinator, plan and (without the options that pick
 * neurons of one side, `perSide`) zoo.
 */
function addPairOptions(command: Command, perSide = true): Command {
  const withSides = (c: Command) =>
    perSide
      ? c
          .option('--layers-f <names>', 'partial: keep only these layers of F', listOption('--layers-f'))
          .option('--layers-g <names>', 'partial: keep only these layers of G', listOption('--layers-g'))
          .option('--sample <n>', 'partial: keep at most n random neurons per layer', integerOption('--sample', 1))
          .option('--seed <s>', 'seed for --sample', integerOption('--seed', 0, 2 ** 32 - 1), 0)
      : c;
  return withSides(
    command
      .addOption(
        new Option('--conv <mode>', 'conv layers: one neuron per unit (C*H*W), or per channel (samples M*H*W)').choices(['units', 'channels']).default('units'),
      )
      .addOption(new Option('--layout <layout>', 'channels: where the channel axis is, for layers whose file does not say').choices([...LAYOUTS]))
      .option(
        '--spatial <S>',
        "channels: average-pool every layer's H x W maps to S x S, or 'min' (the smallest maps of both models)",
        spatialOption(MAX_SPATIAL, true),
      )
      .option('--layers <names>', 'partial: keep only these layers (comma-separated) in both models', listOption('--layers'))
      .option('--probes <k>', 'partial: use only the first k probes', integerOption('--probes', 2))
      .option('--threads <n>', 'worker threads (default: one per core; at most 4 per core and one per tile)', integerOption('--threads', 1, 1024))
      .addOption(new Option('--kernel <name>', 'tile kernel; auto tries native, tfjs, reference').choices([...KERNEL_CHOICES]).default('auto'))
      .option('--null <K>', 'permutations for the chance baseline (0: off)', integerOption('--null', 0, 1000), DEFAULT_NULL.permutations)
      .option(
        '--null-sample <n>',
        'neurons per direction sampled for the null (default 2000, fewer if needed to keep it under 10% of the job)',
        integerOption('--null-sample', 1),
      )
      .option('--null-seed <s>', "seed of the null's probe permutations and neuron sample", integerOption('--null-seed', 0, 2 ** 32 - 1), DEFAULT_NULL.seed),
  );
}

function modelOptions(flags: PairFlags, env: CliEnv): ModelOptions & { null: NullOptionsInput; kernel: KernelOptions; threads?: number } {
  if (flags.seed !== undefined && flags.seed !== 0 && flags.sample === undefined) throw new UsageError('--seed only applies with --sample N');
  return {
    conv: flags.conv,
    ...(flags.layout !== undefined ? { layout: flags.layout } : {}),
    ...(flags.spatial !== undefined ? { spatial: flags.spatial } : {}),
    ...(flags.layers ? { layers: flags.layers } : {}),
    ...(flags.layersF ? { layersF: flags.layersF } : {}),
    ...(flags.layersG ? { layersG: flags.layersG } : {}),
    ...(flags.sample !== undefined ? { sample: { n: flags.sample, seed: flags.seed ?? 0 } } : {}),
    ...(flags.probes !== undefined ? { probes: flags.probes } : {}),
    kernel: kernelFromEnv(flags.kernel, env.vars),
    ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
    null: { permutations: flags.null, ...(flags.nullSample !== undefined ? { sample: flags.nullSample } : {}), seed: flags.nullSeed },
  };
}

/** Every scoring command's options: the pair options, the run's, and the cluster's. */
export function addRunOptions(command: Command, cluster: boolean, perSide: boolean): Command {
  return addServiceTimeout(addRedisFlags(addNatsFlags(addPairOptions(command, perSide))))
    .addOption(new Option('--match <mode>', 'match mode for the headline score and --matches').choices(['paper', 'penalized']).default('paper'))
    .addOption(new Option('--constant <mode>', 'constant neurons count in the means, or are dropped').choices(['include', 'exclude']).default('include'))
    .option('--tile <b>', 'neurons per block; a tile is b x b (default: chosen per kernel and M)', integerOption('--tile', 1))
    .option('--memory <size>', 'bytes of shard-set data cached at once when scoring shard sets, e.g. 512MiB (default 2GiB)', sizeOption('--memory'))
    .option('--no-progress', 'no progress output on stderr')
    .addOption(new Option('--nats <url>', 'cluster: NATS server, nats://[user:pass@]host:4222 or tls://; needs --redis').makeOptionMandatory(cluster))
    .addOption(new Option('--redis <url>', 'cluster: Redis server for job state, redis://[user:pass@]host:6379 or rediss://').makeOptionMandatory(cluster))
    .option('--job <name>', 'cluster: job name; rerun with the same name to resume (default: made up and printed)')
    .option('--upload', 'cluster: put both sets in the NATS object store, for workers with no shared path')
    .option('--prefix <prefix>', 'cluster: Redis key prefix', DEFAULT_PREFIX)
    .option('--ack-wait <seconds>', 'cluster: seconds a worker may hold a tile without a heartbeat', numberOption('--ack-wait', 0.5, 86_400), 30)
    .option('--max-deliver <n>', 'cluster: deliveries of a tile before the job fails', integerOption('--max-deliver', 1, 1000), 5)
    .option('--checkpoint-tiles <n>', 'cluster: checkpoint to Redis after this many tiles...', integerOption('--checkpoint-tiles', 1), 256)
    .option('--checkpoint-seconds <s>', '...or this many seconds', numberOption('--checkpoint-seconds', 0.1, 3600), 5)
    .option('--ttl <seconds>', 'cluster: how long a finished job stays in Redis', integerOption('--ttl', 1), 7 * 24 * 3600)
    .option(
      '--lease <seconds>',
      "cluster: the coordinator's lease on its job; a restart waits for a dead one's to expire",
      numberOption('--lease', 1, 3600),
      15,
    )
    .option('--metrics-port <port>', 'cluster: serve Prometheus metrics on this port (0: any free port)', integerOption('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', 'cluster: address for --metrics-port', '127.0.0.1')
    .option('--workers <n>', 'cluster: workers the super-tiles are sized for', integerOption('--workers', 1, 100_000), 16)
    .option(
      '--stall-timeout <seconds>',
      "cluster: fail the job (exit 5, its state kept for a rerun to resume) when no tile finishes for this long; 'none' waits for ever",
      durationOrNone('--stall-timeout', 1, 30 * 86_400),
      DEFAULT_STALL_TIMEOUT,
    )
    .option(
      '--verify <n>',
      "cluster: entries of each worker's result the coordinator computes again and compares before merging it (0: trust the workers)",
      integerOption('--verify', 0, 1024),
      DEFAULT_VERIFY,
    )
    .option(
      '--audit <share>',
      'cluster: share of tiles another worker computes again; a worker found false is quarantined and its tiles computed again (0 to 1)',
      numberOption('--audit', 0, 1),
      DEFAULT_AUDIT,
    )
    .option(
      '--super-tile <neurons>',
      'cluster: neurons per side of a super-tile, the unit a worker computes and sends back (default: sized from --workers, M and max_payload)',
      integerOption('--super-tile', 1),
    );
}

function addScoreOptions(command: Command, cluster: boolean): Command {
  return addRunOptions(command, cluster, true)
    .option('--json', 'print the full report as JSON on stdout (nothing else goes to stdout)')
    .option('--out <file>', 'write the full JSON report to a file')
    .option('--matches <file>', "write every neuron's best partner as CSV");
}

function clusterOptions(flags: RunFlags, env: CliEnv): ClusterOptions {
  if (flags.nats === undefined || flags.redis === undefined) throw new UsageError('a cluster run needs both --nats and --redis');
  return {
    nats: flags.nats,
    redis: flags.redis,
    ...(flags.job !== undefined ? { job: flags.job } : {}),
    upload: flags.upload === true,
    prefix: flags.prefix,
    ackWait: flags.ackWait,
    maxDeliver: flags.maxDeliver,
    checkpointTiles: flags.checkpointTiles,
    checkpointSeconds: flags.checkpointSeconds,
    ttl: flags.ttl,
    lease: flags.lease,
    ...(flags.metricsPort !== undefined ? { metricsPort: flags.metricsPort } : {}),
    metricsHost: flags.metricsHost,
    natsCredentials: natsCredentials(flags, env),
    redisCredentials: redisCredentials(flags, env),
    serviceTimeout: flags.serviceTimeout,
    workers: flags.workers,
    stallTimeout: flags.stallTimeout,
    verify: flags.verify,
    audit: flags.audit,
    ...(flags.superTile !== undefined ? { superTile: flags.superTile } : {}),
    ...(env.logLevel !== undefined ? { logLevel: env.logLevel } : {}),
  };
}

/** The library's RunOptions from a scoring command's flags (cluster options when --nats or --redis is given, or `clustered`). */
export function runOptions(flags: RunFlags, io: Io, env: CliEnv, clustered: boolean): RunOptions {
  const cluster = clustered || flags.nats !== undefined || flags.redis !== undefined;
  if (!cluster) {
    for (const flag of ['job', 'upload', 'metricsPort'] as const) {
      if (flags[flag] !== undefined)
        throw new UsageError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to cluster runs: add --nats and --redis`);
    }
  }
  return {
    ...modelOptions(flags, env),
    nativeStandardize: !env.jsStandardize,
    match: flags.match,
    constant: flags.constant,
    ...(flags.tile !== undefined ? { tile: flags.tile } : {}),
    ...(flags.memory !== undefined ? { memory: flags.memory } : {}),
    progress: flags.progress,
    ...(env.progressMs !== undefined ? { progressInterval: env.progressMs } : {}),
    log: (line) => io.stderr(`${line}\n`),
    trace: env.trace,
    ...(cluster ? { cluster: clusterOptions(flags, env) } : {}),
  };
}

async function runScore(f: string, g: string, flags: ScoreFlags, io: Io, env: CliEnv, coordinator: boolean): Promise<void> {
  const options: ScoreOptions = {
    f,
    g,
    ...runOptions(flags, io, env, coordinator),
    ...(flags.out !== undefined ? { out: flags.out } : {}),
    ...(flags.matches !== undefined ? { matches: flags.matches } : {}),
  };
  const { score } = await import('../coordinator/score.js');
  const { report, summary } = await score(options);
  io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${summary}\n`);
}

export function addScoreCommands(program: Command, io: Io, env: CliEnv): void {
  addScoreOptions(
    program
      .command('score')
      .description('score two activation sets (a folder of .npy layers, a .safetensors file, or a shard set each)')
      .argument('<F>', 'activation set of model F')
      .argument('<G>', 'activation set of model G'),
    false,
  ).action(async (f: string, g: string, flags: ScoreFlags) => cleanOnSignals(() => runScore(f, g, flags, io, env, false)));
  addScoreOptions(
    program
      .command('coordinator')
      .description("run a cluster job: publish the tiles of F x G to NATS, reduce the workers' results, keep state in Redis")
      .argument('<F>', 'activation set of model F (on a path the workers share, or with --upload)')
      .argument('<G>', 'activation set of model G'),
    true,
  ).action(async (f: string, g: string, flags: ScoreFlags) => cleanOnSignals(() => runScore(f, g, flags, io, env, true)));
  addPairOptions(
    program
      .command('plan')
      .description('what scoring F against G would cost and mean, before any compute: pairs, FLOPs, time on this machine, chance level')
      .argument('<F>', 'activation set of model F')
      .argument('<G>', 'activation set of model G'),
  )
    .option('--json', 'print the plan as JSON')
    .action(async (f: string, g: string, flags: PairFlags & { json?: boolean }) => {
      const { plan, planSummary } = await import('../coordinator/plan.js');
      const p = await plan({ f, g, ...modelOptions(flags, env) });
      io.stdout(flags.json ? `${JSON.stringify(p, null, 2)}\n` : `${planSummary(p)}\n`);
    });
}
