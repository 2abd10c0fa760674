/** `neurocorr worker`, `jobs`, `prepare` and `synth`: flags mapped onto the library's options. */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_PREFIX } from '../shared/cluster/index.js';
import { KERNEL_CHOICES, type KernelChoice } from '../worker/kernel-options.js';
import { DEFAULT_TILE_TIMEOUT } from '../worker/cluster/options.js';
import { kernelFromEnv, type CliEnv } from './env.js';
import { featuresOption, integerOption, numberOption, sizeOption, spatialOption } from './options.js';
import { LAYOUTS, MAX_SPATIAL, type Layout } from '../shared/core/index.js';
import { addNatsFlags, addRedisFlags, addServiceTimeout, natsCredentials, redisCredentials, type NatsFlags, type RedisFlags } from './services.js';
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
  addServiceTimeout(
    addNatsFlags(
      program
        .command('worker')
        .description('compute cluster tiles from NATS until SIGTERM (then finish the tiles in flight and exit)')
        .requiredOption('--nats <url>', 'NATS server: nats://host:4222, or tls://'),
    ),
  )
    .option('--id <name>', "this worker's identity, the last token of its result subject (default: host name and pid); see Security")
    .option(
      '--data-root <dir>',
      'a folder whose files jobs may name by path (repeatable); with none, only jobs whose inputs are in the object store (--upload)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--threads <n>', 'kernel threads (default: one per core)', integerOption('--threads', 1, 1024))
    .option('--inflight <n>', 'tiles held at once (default: 2 per thread)', integerOption('--inflight', 1, 4096))
    .option(
      '--cache <size>',
      'bytes the jobs held open may take together (models held whole, shard-set caches), e.g. 4GiB; idle jobs are closed to make room',
      sizeOption('--cache'),
      2 * 1024 ** 3,
    )
    .option(
      '--tile-timeout <seconds>',
      "the least time a lane may go without progress before it stops extending its tile's lease (the bound is 10x the expected time)",
      numberOption('--tile-timeout', 0.1, 30 * 86_400),
      DEFAULT_TILE_TIMEOUT,
    )
    .option('--cache-dir <dir>', 'private folder for sets from the NATS object store (default: ~/.cache/neurocorr, or $XDG_CACHE_HOME/neurocorr)')
    .addOption(new Option('--kernel <name>', 'tile kernel; auto tries native, tfjs, reference').choices([...KERNEL_CHOICES]).default('auto'))
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port (0: any free port)', integerOption('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
    .action(async (flags: WorkerFlags) => {
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
          kernel: kernelFromEnv(flags.kernel, env.vars),
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
  addServiceTimeout(
    addRedisFlags(
      program
        .command('jobs')
        .description('list cluster jobs with their state and progress, or remove one (--delete NAME)')
        .requiredOption('--redis <url>', 'Redis server: redis://host:6379, or rediss://'),
    ),
  )
    .option('--prefix <prefix>', 'Redis key prefix', DEFAULT_PREFIX)
    .option('--delete <name>', "remove this job's state (its spec, checkpoint, report and lease) from Redis")
    .option('--json', 'print the jobs as JSON')
    .action(async (flags: RedisFlags & { redis: string; prefix: string; json?: boolean; delete?: string }) => {
      const { jobsTable } = await import('../coordinator/cluster/jobs.js');
      const redis = { url: flags.redis, credentials: redisCredentials(flags, env), timeoutMs: flags.serviceTimeout * 1000, option: 'redis' };
      io.stdout(await jobsTable({ redis, prefix: flags.prefix, json: flags.json === true, ...(flags.delete !== undefined ? { delete: flags.delete } : {}) }));
    });
  addQueueInit(program, io, env);
}

interface QueueInitFlags extends NatsFlags {
  nats: string;
  json?: boolean;
}

function addQueueInit(program: Command, io: Io, env: CliEnv): void {
  addServiceTimeout(
    addNatsFlags(
      program
        .command('queue-init')
        .description("create the cluster's work queue before any job (the tile and result streams, the job bucket); safe to repeat")
        .requiredOption('--nats <url>', 'NATS server: nats://host:4222, or tls://'),
    ),
  )
    .option('--json', 'print what was set up as JSON')
    .action(async (flags: QueueInitFlags) => {
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
  program
    .command('prepare')
    .description('turn a .npy folder or .safetensors file into a shard set (standardized, neuron-major Arrow IPC shards), streaming')
    .argument('<IN>', 'activation set: a folder of .npy layers or a .safetensors file')
    .argument('<OUT>', 'new shard-set directory (manifest.json + *.arrow)')
    .option('--memory <size>', 'bytes of shard data held at once, e.g. 512MiB, 2GiB', sizeOption('--memory'), 2 * 1024 ** 3)
    .addOption(new Option('--conv <mode>', 'conv layers: one neuron per unit, or per channel').choices(['units', 'channels']).default('units'))
    .addOption(new Option('--layout <layout>', 'channels: where the channel axis is, for layers whose file does not say').choices([...LAYOUTS]))
    .option('--spatial <S>', "channels: average-pool every layer's H x W maps to S x S", spatialOption(MAX_SPATIAL, false))
    .option('--shard-neurons <n>', 'at most n neurons per shard (default: as many as --memory allows)', integerOption('--shard-neurons', 1))
    .option('--force', 'replace OUT if it is a shard set neurocorr prepare wrote (and nothing else)')
    .action(async (input: string, out: string, flags: PrepareFlags) =>
      cleanOnSignals(async () => {
        const { prepareAsync } = await import('../coordinator/prepare.js');
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
          ...(env.vars['NEUROCORR_NATIVE_ADDON'] ? { addon: env.vars['NEUROCORR_NATIVE_ADDON'] } : {}),
          log: (line) => io.stderr(`${line}\n`),
        });
        const seconds = (performance.now() - started) / 1000;
        io.stdout(`${out}: ${result.neurons} neurons in ${result.shards} shards, ${(result.bytes / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s\n`);
      }),
    );
  program
    .command('synth')
    .description('generate a structured synthetic activation set with the layer shapes of a real architecture (no weights needed)')
    .argument('<OUT>', 'new output directory: one .npy per layer, layers.json and synth.json')
    .option('--arch <name>', 'resnet18, resnet34, resnet50, resnet101, resnet152, or mlp:<sizes> such as mlp:100,60,40', 'resnet18')
    .option('--probes <M>', 'probes (samples per neuron)', integerOption('--probes', 2, 1_000_000), 32)
    .option('--resolution <px>', 'input resolution of the architecture', integerOption('--resolution', 8, 4096), 224)
    .option('--scale <f>', 'multiply every spatial side by f (at least 1 position), to keep tests small', numberOption('--scale', 1e-4, 1), 1)
    .option('--all-convs', 'every conv output, not only block outputs')
    .option('--seed <s>', "seed of this model's weights", integerOption('--seed', 0, 2 ** 32 - 1), 1)
    .option('--probe-seed <s>', 'seed of the latent features; models to be compared must share it', integerOption('--probe-seed', 0, 2 ** 32 - 1), 0)
    .option(
      '--features <from:to|none>',
      'the latent features (of 16) the neurons read, e.g. 0:10; none: noise only, a model unrelated to any other',
      featuresOption,
    )
    .addOption(new Option('--depth <mode>', 'layer depth in layers.json: position, or ResNet stage').choices(['position', 'stage']).default('position'))
    .addOption(new Option('--layout <layout>', 'conv layers as [C, H, W] (PyTorch) or [H, W, C] (TensorFlow) per probe').choices([...LAYOUTS]).default('nchw'))
    .option('--force', 'replace OUT if neurocorr synth wrote it (and nothing else)')
    .action(async (out: string, flags: SynthFlags) =>
      cleanOnSignals(async () => {
        const { synthesizeAsync } = await import('../coordinator/synth/synth.js');
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
