/** `neurocorr score`, `coordinator` and `plan`: flags mapped onto the library's ScoreOptions and PlanOptions. */
import type { Command } from 'commander';
import type { ClusterOptions, ModelOptions, NullOptionsInput, RunOptions, ScoreOptions } from '../coordinator/options.js';
import { UsageError } from '../shared/errors.js';
import type { KernelChoice, KernelOptions } from '../worker/kernel-options.js';
import { kernelFromEnv, type CliEnv } from './env.js';
import type { Layout } from '../shared/core/index.js';
import { natsCredentials, redisCredentials, type NatsFlags, type RedisFlags } from './services.js';
import { addOptions } from './table.js';
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
    kernel: kernelFromEnv(flags.kernel, env),
    ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
    null: { permutations: flags.null, ...(flags.nullSample !== undefined ? { sample: flags.nullSample } : {}), seed: flags.nullSeed },
  };
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
    ...(env.progressInterval !== undefined ? { progressInterval: env.progressInterval } : {}),
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
  addOptions(
    program
      .command('score')
      .description('score two activation sets (a folder of .npy layers, a .safetensors file, or a shard set each)')
      .argument('<F>', 'activation set of model F')
      .argument('<G>', 'activation set of model G'),
    'score',
    env,
  ).action(async (f: string, g: string, flags: ScoreFlags) => cleanOnSignals(() => runScore(f, g, flags, io, env, false)));
  addOptions(
    program
      .command('coordinator')
      .description("run a cluster job: publish the tiles of F x G to NATS, reduce the workers' results, keep state in Redis")
      .argument('<F>', 'activation set of model F (on a path the workers share, or with --upload)')
      .argument('<G>', 'activation set of model G'),
    'coordinator',
    env,
  ).action(async (f: string, g: string, flags: ScoreFlags) => cleanOnSignals(() => runScore(f, g, flags, io, env, true)));
  addOptions(
    program
      .command('plan')
      .description('what scoring F against G would cost and mean, before any compute: pairs, FLOPs, time on this machine, chance level')
      .argument('<F>', 'activation set of model F')
      .argument('<G>', 'activation set of model G'),
    'plan',
    env,
  ).action(async (f: string, g: string, flags: PairFlags & { json?: boolean }) => {
    const { plan, planSummary } = await import('../coordinator/plan.js');
    const p = await plan({ f, g, ...modelOptions(flags, env) });
    io.stdout(flags.json ? `${JSON.stringify(p, null, 2)}\n` : `${planSummary(p)}\n`);
  });
}
