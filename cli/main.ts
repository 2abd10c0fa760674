/** The `neurocorr` command line. Exit codes: 0 ok, 2 bad input or usage, 1 internal failure. */
import { Command, CommanderError, Option } from 'commander';
import { NeurocorrError, UsageError } from '../shared/errors.js';
import { DEFAULT_PREFIX } from '../shared/cluster/index.js';
import { humanSummary, type Report } from '../shared/core/index.js';
import { KERNEL_CHOICES, type KernelChoice } from '../worker/loader.js';
import { kernelFromEnv, standardizeFromEnv } from './env.js';
import { integerOption, listOption, numberOption, sizeOption } from './options.js';

// Metrics stay on loopback unless asked; pino and prom-client load only for cluster commands.
const DEFAULT_METRICS_HOST = '127.0.0.1';
import type { ScoreOptions } from '../coordinator/score.js';

interface PairFlags {
  conv: 'units' | 'channels';
  layers?: string[];
  layersF?: string[];
  layersG?: string[];
  sample?: number;
  seed: number;
  probes?: number;
  threads?: number;
  kernel: KernelChoice;
  null: number;
  nullSample?: number;
  nullSeed: number;
}

interface ScoreFlags extends PairFlags {
  match: 'paper' | 'penalized';
  constant: 'include' | 'exclude';
  tile?: number;
  json?: boolean;
  out?: string;
  matches?: string;
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
}

interface WorkerFlags {
  nats: string;
  threads?: number;
  inflight?: number;
  cache: number;
  cacheDir?: string;
  kernel: KernelChoice;
  metricsPort?: number;
  metricsHost: string;
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
  force?: boolean;
}

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** What selects and shapes the neurons, the kernel, and the permutation null: shared by score, coordinator and plan. */
function addPairOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--conv <mode>', 'conv layers: one neuron per unit (C*H*W), or per channel (samples M*H*W)').choices(['units', 'channels']).default('units'),
    )
    .option('--layers <names>', 'partial: keep only these layers (comma-separated) in both models', listOption('--layers'))
    .option('--layers-f <names>', 'partial: keep only these layers of F', listOption('--layers-f'))
    .option('--layers-g <names>', 'partial: keep only these layers of G', listOption('--layers-g'))
    .option('--sample <n>', 'partial: keep at most n random neurons per layer', integerOption('--sample', 1))
    .option('--seed <s>', 'seed for --sample', integerOption('--seed', 0, 2 ** 32 - 1), 0)
    .option('--probes <k>', 'partial: use only the first k probes', integerOption('--probes', 2))
    .option('--threads <n>', 'worker threads (default: one per core)', integerOption('--threads', 1, 1024))
    .addOption(new Option('--kernel <name>', 'tile kernel; auto tries native, tfjs, reference').choices([...KERNEL_CHOICES]).default('auto'))
    .option('--null <K>', 'permutations for the chance baseline (0: off)', integerOption('--null', 0, 1000), 5)
    .option(
      '--null-sample <n>',
      'neurons per direction sampled for the null (default 2000, fewer if needed to keep it under 10% of the job)',
      integerOption('--null-sample', 1),
    )
    .option('--null-seed <s>', "seed of the null's probe permutations and neuron sample", integerOption('--null-seed', 0, 2 ** 32 - 1), 1);
}

function pairOptions(flags: PairFlags) {
  if (flags.seed !== 0 && flags.sample === undefined) throw new UsageError('--seed only applies with --sample N');
  return {
    conv: flags.conv,
    layers: flags.layers ?? null,
    layersF: flags.layersF ?? null,
    layersG: flags.layersG ?? null,
    sample: flags.sample === undefined ? null : { n: flags.sample, seed: flags.seed },
    probes: flags.probes ?? null,
    kernel: kernelFromEnv(flags.kernel),
    standardize: standardizeFromEnv(),
    ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
    null: { permutations: flags.null, sample: flags.nullSample ?? null, seed: flags.nullSeed },
  };
}

function addScoreOptions(command: Command, cluster: boolean): Command {
  return addPairOptions(command)
    .addOption(new Option('--match <mode>', 'match mode for the headline score and --matches').choices(['paper', 'penalized']).default('paper'))
    .addOption(new Option('--constant <mode>', 'constant neurons count in the means, or are dropped').choices(['include', 'exclude']).default('include'))
    .option('--tile <b>', 'neurons per block; a tile is b x b (default: chosen per kernel and M)', integerOption('--tile', 1))
    .option('--json', 'print the full report as JSON on stdout (nothing else goes to stdout)')
    .option('--out <file>', 'write the full JSON report to a file')
    .option('--matches <file>', "write every neuron's best partner as CSV")
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
    .option('--metrics-host <host>', 'cluster: address for --metrics-port', DEFAULT_METRICS_HOST);
}

async function runScore(fPath: string, gPath: string, flags: ScoreFlags, io: Io, coordinator: boolean): Promise<void> {
  const options: ScoreOptions = {
    ...pairOptions(flags),
    match: flags.match,
    constant: flags.constant,
    ...(flags.tile !== undefined ? { tile: flags.tile } : {}),
    out: flags.out ?? null,
    matches: flags.matches ?? null,
    ...(flags.memory !== undefined ? { memory: flags.memory } : {}),
    progress: flags.progress,
    log: (line) => io.stderr(`${line}\n`),
  };
  const print = (report: Report, summary: string) => io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${summary}\n`);
  const clustered = coordinator || flags.nats !== undefined || flags.redis !== undefined;
  if (!clustered) {
    for (const flag of ['job', 'upload', 'metricsPort'] as const) {
      if (flags[flag] !== undefined)
        throw new UsageError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to cluster runs: add --nats and --redis`);
    }
    const { score } = await import('../coordinator/score.js');
    const { report } = await score(fPath, gPath, options);
    print(report, humanSummary(report));
    return;
  }
  if (flags.nats === undefined || flags.redis === undefined) throw new UsageError('a cluster run needs both --nats and --redis');
  const { scoreCluster } = await import('../coordinator/cluster/coordinator.js');
  const { report, summary } = await scoreCluster(fPath, gPath, options, {
    nats: flags.nats,
    redis: flags.redis,
    job: flags.job ?? null,
    upload: flags.upload === true,
    prefix: flags.prefix,
    queue: { ackWaitMs: flags.ackWait * 1000, maxDeliver: flags.maxDeliver },
    checkpointTiles: flags.checkpointTiles,
    checkpointSeconds: flags.checkpointSeconds,
    ttlSeconds: flags.ttl,
    leaseMs: flags.lease * 1000,
    metricsPort: flags.metricsPort ?? null,
    metricsHost: flags.metricsHost,
  });
  print(report, summary);
}

function buildProgram(io: Io): Command {
  const program = new Command('neurocorr')
    .description('Exact cross-model neuronal correlation between two networks')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run neurocorr --help for usage)');

  addScoreOptions(
    program
      .command('score')
      .description('score two activation sets (a folder of .npy layers, a .safetensors file, or a shard set each)')
      .argument('<F>', 'activation set of model F')
      .argument('<G>', 'activation set of model G'),
    false,
  ).action(async (fPath: string, gPath: string, flags: ScoreFlags) => runScore(fPath, gPath, flags, io, false));
  addScoreOptions(
    program
      .command('coordinator')
      .description("run a cluster job: publish the tiles of F x G to NATS, reduce the workers' results, keep state in Redis")
      .argument('<F>', 'activation set of model F (on a path the workers share, or with --upload)')
      .argument('<G>', 'activation set of model G'),
    true,
  ).action(async (fPath: string, gPath: string, flags: ScoreFlags) => runScore(fPath, gPath, flags, io, true));
  addPairOptions(
    program
      .command('plan')
      .description('what scoring F against G would cost and mean, before any compute: pairs, FLOPs, time on this machine, chance level')
      .argument('<F>', 'activation set of model F')
      .argument('<G>', 'activation set of model G'),
  )
    .option('--json', 'print the plan as JSON')
    .action(async (fPath: string, gPath: string, flags: PairFlags & { json?: boolean }) => {
      const { plan, planSummary } = await import('../coordinator/plan.js');
      const p = await plan(fPath, gPath, pairOptions(flags));
      io.stdout(flags.json ? `${JSON.stringify(p, null, 2)}\n` : `${planSummary(p)}\n`);
    });
  program
    .command('worker')
    .description('compute cluster tiles from NATS until SIGTERM (then finish the tiles in flight and exit)')
    .requiredOption('--nats <url>', 'NATS server: nats://[user:pass@]host:4222, or tls://')
    .option('--threads <n>', 'kernel threads (default: one per core)', integerOption('--threads', 1, 1024))
    .option('--inflight <n>', 'tiles held at once (default: 2 per thread)', integerOption('--inflight', 1, 4096))
    .option('--cache <size>', 'bytes of shard data cached per job, e.g. 4GiB', sizeOption('--cache'), 2 * 1024 ** 3)
    .option('--cache-dir <dir>', 'where sets from the NATS object store are downloaded (default: $TMPDIR/neurocorr-cache)')
    .addOption(new Option('--kernel <name>', 'tile kernel; auto tries native, tfjs, reference').choices([...KERNEL_CHOICES]).default('auto'))
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port (0: any free port)', integerOption('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', 'address for --metrics-port', DEFAULT_METRICS_HOST)
    .action(async (flags: WorkerFlags) => {
      const { startWorker, defaultCacheDir } = await import('../worker/cluster/worker.js');
      const { defaultThreads } = await import('../worker/pool.js');
      const threads = flags.threads ?? defaultThreads();
      const worker = await startWorker({
        nats: flags.nats,
        threads,
        inflight: flags.inflight ?? 2 * threads,
        cacheBytes: flags.cache,
        cacheDir: flags.cacheDir ?? defaultCacheDir(),
        kernel: kernelFromEnv(flags.kernel),
        standardize: standardizeFromEnv(),
        metricsPort: flags.metricsPort ?? null,
        metricsHost: flags.metricsHost,
        fault: process.env['NEUROCORR_WORKER_FAULT'] ?? null,
      });
      const stop = () => void worker.drain();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await worker.closed;
    });
  program
    .command('jobs')
    .description('list cluster jobs with their state and progress')
    .requiredOption('--redis <url>', 'Redis server: redis://[user:pass@]host:6379, or rediss://')
    .option('--prefix <prefix>', 'Redis key prefix', DEFAULT_PREFIX)
    .option('--json', 'print the jobs as JSON')
    .action(async (flags: { redis: string; prefix: string; json?: boolean }) => {
      const { jobsTable } = await import('../coordinator/cluster/jobs.js');
      io.stdout(await jobsTable(flags.redis, flags.prefix, flags.json === true));
    });
  program
    .command('prepare')
    .description('turn a .npy folder or .safetensors file into a shard set (standardized, neuron-major Arrow IPC shards), streaming')
    .argument('<IN>', 'activation set: a folder of .npy layers or a .safetensors file')
    .argument('<OUT>', 'new shard-set directory (manifest.json + *.arrow)')
    .option('--memory <size>', 'bytes of shard data held at once, e.g. 512MiB, 2GiB', sizeOption('--memory'), 2 * 1024 ** 3)
    .addOption(new Option('--conv <mode>', 'conv layers: one neuron per unit, or per channel').choices(['units', 'channels']).default('units'))
    .option('--shard-neurons <n>', 'at most n neurons per shard (default: as many as --memory allows)', integerOption('--shard-neurons', 1))
    .option('--force', 'replace OUT if it exists')
    .action(async (input: string, out: string, flags: { memory: number; conv: 'units' | 'channels'; force?: boolean; shardNeurons?: number }) => {
      const { prepare } = await import('../coordinator/prepare.js');
      const started = performance.now();
      const result = prepare(input, out, {
        memory: flags.memory,
        conv: flags.conv,
        force: flags.force === true,
        ...(flags.shardNeurons !== undefined ? { shardNeurons: flags.shardNeurons } : {}),
        standardize: standardizeFromEnv(),
        log: (line) => io.stderr(`${line}\n`),
      });
      const seconds = (performance.now() - started) / 1000;
      io.stdout(`${out}: ${result.neurons} neurons in ${result.shards} shards, ${(result.bytes / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s\n`);
    });

  program
    .command('synth')
    .description('generate a structured synthetic activation set with the layer shapes of a real architecture (no weights needed)')
    .argument('<OUT>', 'new output directory: one .npy per layer plus layers.json')
    .option('--arch <name>', 'resnet18, resnet34, resnet50, resnet101, resnet152, or mlp:<sizes> such as mlp:100,60,40', 'resnet18')
    .option('--probes <M>', 'probes (samples per neuron)', integerOption('--probes', 2, 1_000_000), 32)
    .option('--resolution <px>', 'input resolution of the architecture', integerOption('--resolution', 8, 4096), 224)
    .option('--scale <f>', 'multiply every spatial side by f (at least 1 position), to keep tests small', numberOption('--scale', 1e-4, 1), 1)
    .option('--all-convs', 'every conv output, not only block outputs')
    .option('--seed <s>', "seed of this model's weights", integerOption('--seed', 0, 2 ** 32 - 1), 1)
    .option('--probe-seed <s>', 'seed of the latent features; models to be compared must share it', integerOption('--probe-seed', 0, 2 ** 32 - 1), 0)
    .addOption(new Option('--depth <mode>', 'layer depth in layers.json: position, or ResNet stage').choices(['position', 'stage']).default('position'))
    .option('--force', 'replace OUT if it exists')
    .action(async (out: string, flags: SynthFlags) => {
      const { synthesize } = await import('../coordinator/synth/synth.js');
      const started = performance.now();
      const result = synthesize(
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
          force: flags.force === true,
        },
        (done, total) => io.stderr(`synth: layer ${done}/${total}\n`),
      );
      const seconds = (performance.now() - started) / 1000;
      io.stdout(
        `${out}: ${flags.arch}, ${result.layers} layers, ${result.neurons} neurons, ${flags.probes} probes, ${(result.bytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(1)} s\n`,
      );
    });
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      if (err.code === 'commander.executeSubCommandAsync') return 0;
      return 2;
    }
    if (err instanceof NeurocorrError) {
      io.stderr(`neurocorr: error: ${err.message}\n`);
      if (process.env['NEUROCORR_DEBUG']) io.stderr(`${err.stack ?? ''}\n`);
      return err.exitCode;
    }
    io.stderr(`neurocorr: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
