/** `neurocorr worker`, `jobs`, `prepare` and `synth`: flags mapped onto the library's options. */
import { join } from 'node:path';
import type { Command } from 'commander';
import type { KernelChoice } from '../worker/kernel-options.js';
import { kernelFromEnv, type CliEnv } from './env.js';
import type { Layout } from '../shared/core/index.js';
import { natsCredentials, redisCredentials, type NatsFlags, type RedisFlags } from './services.js';
import { addOptions } from './table.js';
import type { Io } from './io.js';
import { cleanOnSignals } from './signals.js';

interface WorkerFlags extends NatsFlags {
  nats: string;
  id?: string;
  dataRoot: string[];
  threads?: number;
  inflight?: number;
  cache: number;
  cacheDir?: string;
  kernel: KernelChoice;
  metricsPort?: number;
  metricsHost: string;
  tileTimeout: number;
}

interface SynthFlags {
  arch: string;
  probes: number;
  resolution: number;
  scale: number;
  allConvs?: boolean;
  seed: number;
  probeSeed: number;
  depth: 'position' | 'stage';
  layout: Layout;
  features?: { from: number; to: number } | 'none';
  force?: boolean;
}

export function addWorkerCommands(program: Command, io: Io, env: CliEnv): void {
  addOptions(
    program.command('worker').description('compute cluster tiles from NATS until SIGTERM (then finish the tiles in flight and exit)'),
    'worker',
    env,
  ).action(async (flags: WorkerFlags) => {
    const [{ runWorker }, { flagName }] = await Promise.all([import('../worker/cluster/worker.js'), import('./flags.js')]);
    // Listen before the worker starts: a SIGTERM during start-up drains it as soon as it is up, instead of killing it.
    let stopping = false;
    let stop = () => void (stopping = true);
    const onSignal = () => stop();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    const worker = await runWorker(
      {
        nats: flags.nats,
        ...(flags.id !== undefined ? { id: flags.id } : {}),
        natsCredentials: natsCredentials(flags, env),
        dataRoots: flags.dataRoot,
        serviceTimeout: flags.serviceTimeout,
        ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
        ...(flags.inflight !== undefined ? { inflight: flags.inflight } : {}),
        cache: flags.cache,
        ...(flags.cacheDir !== undefined ? { cacheDir: flags.cacheDir } : env.cacheHome !== undefined ? { cacheDir: join(env.cacheHome, 'neurocorr') } : {}),
        kernel: kernelFromEnv(flags.kernel, env),
        nativeStandardize: !env.jsStandardize,
        ...(flags.metricsPort !== undefined ? { metricsPort: flags.metricsPort } : {}),
        metricsHost: flags.metricsHost,
        ...(env.logLevel !== undefined ? { logLevel: env.logLevel } : {}),
        tileTimeout: flags.tileTimeout,
      },
      { optionName: flagName, ...(env.workerFault !== null ? { fault: env.workerFault } : {}) },
    );
    stop = () => void worker.drain();
    if (stopping) stop();
    await worker.closed;
  });
  addOptions(program.command('jobs').description('list cluster jobs with their state and progress, or remove one (--delete NAME)'), 'jobs', env).action(
    async (flags: RedisFlags & { redis: string; prefix: string; json?: boolean; delete?: string }) => {
      const { jobsTable } = await import('../coordinator/cluster/jobs.js');
      const redis = { url: flags.redis, credentials: redisCredentials(flags, env), timeoutMs: flags.serviceTimeout * 1000, option: 'redis' };
      io.stdout(await jobsTable({ redis, prefix: flags.prefix, json: flags.json === true, ...(flags.delete !== undefined ? { delete: flags.delete } : {}) }));
    },
  );
  addQueueInit(program, io, env);
}

interface QueueInitFlags extends NatsFlags {
  nats: string;
  json?: boolean;
}

function addQueueInit(program: Command, io: Io, env: CliEnv): void {
  addOptions(
    program.command('queue-init').description("create the cluster's work queue before any job (the tile and result streams, the job bucket); safe to repeat"),
    'queue-init',
    env,
  ).action(async (flags: QueueInitFlags) => {
    const { initQueue } = await import('../coordinator/cluster/queue-init.js');
    const queue = await initQueue({
      nats: flags.nats,
      natsCredentials: natsCredentials(flags, env),
      serviceTimeout: flags.serviceTimeout,
    });
    io.stdout(
      flags.json === true
        ? `${JSON.stringify(queue)}\n`
        : `work queue ready: streams ${queue.streams.join(' and ')}, job bucket ${queue.bucket} (each job's coordinator adds its own tile consumer)\n`,
    );
  });
}

interface PrepareFlags {
  memory: number;
  conv: 'units' | 'channels';
  layout?: Layout;
  spatial?: number | 'min';
  force?: boolean;
  shardNeurons?: number;
}

export function addDataCommands(program: Command, io: Io, env: CliEnv): void {
  addOptions(
    program
      .command('prepare')
      .description('turn a .npy folder or .safetensors file into a shard set (standardized, neuron-major Arrow IPC shards), streaming')
      .argument('<IN>', 'activation set: a folder of .npy layers or a .safetensors file')
      .argument('<OUT>', 'new shard-set directory (manifest.json + *.arrow)'),
    'prepare',
    env,
  ).action(async (input: string, out: string, flags: PrepareFlags) =>
    cleanOnSignals(async () => {
      const { prepareAsync } = await import('../prepare/prepare.js');
      const started = performance.now();
      const result = await prepareAsync({
        input,
        out,
        memory: flags.memory,
        conv: flags.conv,
        ...(flags.layout !== undefined ? { layout: flags.layout } : {}),
        ...(typeof flags.spatial === 'number' ? { spatial: flags.spatial } : {}),
        force: flags.force === true,
        ...(flags.shardNeurons !== undefined ? { shardNeurons: flags.shardNeurons } : {}),
        nativeStandardize: !env.jsStandardize,
        ...(env.nativeAddon !== undefined ? { addon: env.nativeAddon } : {}),
        log: (line) => io.stderr(`${line}\n`),
      });
      const seconds = (performance.now() - started) / 1000;
      io.stdout(`${out}: ${result.neurons} neurons in ${result.shards} shards, ${(result.bytes / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s\n`);
    }),
  );
  addOptions(
    program
      .command('synth')
      .description('generate a structured synthetic activation set with the layer shapes of a real architecture (no weights needed)')
      .argument('<OUT>', 'new output directory: one .npy per layer, layers.json and synth.json'),
    'synth',
    env,
  ).action(async (out: string, flags: SynthFlags) =>
    cleanOnSignals(async () => {
      const { synthesizeAsync } = await import('../synth/synth.js');
      const started = performance.now();
      const result = await synthesizeAsync(
        out,
        {
          arch: flags.arch,
          probes: flags.probes,
          resolution: flags.resolution,
          scale: flags.scale,
          allConvs: flags.allConvs === true,
          seed: flags.seed,
          probeSeed: flags.probeSeed,
          depth: flags.depth,
          layout: flags.layout,
          ...(flags.features !== undefined ? { features: flags.features } : {}),
          force: flags.force === true,
        },
        (done, total) => io.stderr(`synth: layer ${done}/${total}\n`),
      );
      const seconds = (performance.now() - started) / 1000;
      io.stdout(
        `${out}: ${flags.arch}, ${result.layers} layers, ${result.neurons} neurons, ${flags.probes} probes, ${(result.bytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(1)} s\n`,
      );
    }),
  );
}
