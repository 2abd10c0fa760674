/** `neurocorr score F G`: load, standardize, run the tiles, report. */
import { checkOutputPath, writeAtomic } from '../shared/formats/index.js';
import { matchesCsv } from '../shared/core/index.js';
import type { Model } from '../shared/core/index.js';
import type { ConstantMode, MatchMode } from '../shared/core/index.js';
import { buildReport, type PartialInfo, type Scored } from '../shared/core/index.js';
import { warnChance } from '../shared/core/index.js';
import { nullOptions, type NullRequest } from '../shared/core/index.js';
import { planPair, type PairOptions } from '../shared/formats/index.js';
import { isShardPlan } from '../shared/formats/index.js';
import type { ModelPlan } from '../shared/formats/index.js';
import type { Tile } from '../shared/core/index.js';
import type { KernelOptions } from '../worker/loader.js';
import { runEmbedded } from './embedded.js';
import { startPool } from '../worker/pool.js';
import { hugePageAllocate, nativeLoops, type NativeLoopsOptions } from '../worker/native/assist.js';
import { createProgress, type Progress } from './progress.js';
import { ShardStream } from '../shared/formats/index.js';

export interface ScoreOptions extends PairOptions {
  readonly match: MatchMode;
  readonly constant: ConstantMode;
  readonly kernel: KernelOptions;
  /** Native standardization loops (and the addon path for them); on by default where the addon loads. */
  readonly standardize?: NativeLoopsOptions;
  readonly threads?: number;
  readonly tile?: number;
  readonly out: string | null;
  readonly matches: string | null;
  readonly progress: boolean;
  readonly log: (line: string) => void;
  /** Bytes of streamed shard data held at once (shard-set inputs); default 2 GiB. */
  readonly memory?: number;
  /** Test hook: reorders the tile plan. */
  readonly order?: (tiles: Tile[]) => Tile[];
  /** The permutation null: K permutations (0: off), the sample per direction (null: the default, kept under 10% of the job), the seed. */
  readonly null?: NullRequest;
}

export interface ModelPair {
  readonly f: Model;
  readonly g: Model;
  readonly partial: PartialInfo | null;
}

export const DEFAULT_MEMORY = 2 * 1024 ** 3;

const allocateZ = (plan: ModelPlan, options: ScoreOptions): Float32Array => new Float32Array(hugePageAllocate(plan.n * plan.m * 4, options.kernel));

/** Loads and standardizes both activation sets with the run's options. */
export function loadPair(fPath: string, gPath: string, options: ScoreOptions): ModelPair {
  const { f, g, partial } = planPair(fPath, gPath, { ...options, loops: nativeLoops(options.standardize) });
  return { f: f.build(allocateZ(f, options)), g: g.build(allocateZ(g, options)), partial };
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Rejections are observed through the gate; this stops an unhandled-rejection warning for layers no tile reached.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export async function score(fPath: string, gPath: string, options: ScoreOptions): Promise<Scored> {
  if (options.out !== null) checkOutputPath(options.out, '--out');
  if (options.matches !== null) checkOutputPath(options.matches, '--matches');
  const started = performance.now();
  // NEUROCORR_TRACE=1: phase times on stderr, to see where a run's time goes.
  const trace =
    process.env['NEUROCORR_TRACE'] === '1'
      ? (phase: string) => options.log(`trace: ${phase} at ${(performance.now() - started).toFixed(0)} ms`)
      : () => undefined;
  const plans = planPair(fPath, gPath, { ...options, loops: nativeLoops(options.standardize) });
  trace('planned');
  // Shard sets are streamed through a bounded cache; other sets are standardized into memory.
  const memory = options.memory ?? DEFAULT_MEMORY;
  const streamF = isShardPlan(plans.f) ? new ShardStream(fPath, plans.f, memory / 2) : null;
  const streamG = isShardPlan(plans.g) ? new ShardStream(gPath, plans.g, memory / 2) : null;
  const zF = streamF ? new Float32Array(0) : allocateZ(plans.f, options);
  const zG = streamG ? new Float32Array(0) : allocateZ(plans.g, options);
  // The threads boot and load their kernel while this thread standardizes G;
  // then F is standardized layer by layer while the tiles of finished layers run.
  const pool = await startPool(zF, zG, plans.f.m, options.kernel, options.threads);
  const fBuild = streamF ? null : plans.f.start(zF);
  const gBuild = streamG ? null : plans.g.start(zG);
  const f = streamF?.model ?? fBuild!.model;
  const g = streamG?.model ?? gBuild!.model;
  trace('pool starting');
  // After the pool's start, so this small sum runs while the threads boot.
  warnChance(f.m, f.probes, f.n, g.n, options.log);
  try {
    while (gBuild?.step());
    trace('G standardized');
  } catch (err) {
    await pool.destroy();
    throw err;
  }
  const { partial } = plans;
  const layerReady = f.layers.map(() => deferred());
  if (fBuild === null) for (const ready of layerReady) ready.resolve();
  const loadF = (async () => {
    try {
      for (let k = 0; fBuild?.step(); k++) {
        layerReady[k]!.resolve();
        trace(`F layer ${k} standardized`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      for (const ready of layerReady) ready.reject(err);
      throw err;
    }
  })();

  let progress: Progress | null = null;
  const running = runEmbedded(
    f,
    g,
    {
      kernel: options.kernel,
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.tile !== undefined ? { block: options.tile } : {}),
      ...(options.order ? { order: options.order } : {}),
      onStart: ({ kernel, tiles }) => {
        trace('pool ready');
        for (const note of kernel.notes) options.log(`kernel: ${note}`);
        progress = createProgress({ total: tiles, pairsPerUnit: (f.n * g.n) / tiles, label: 'tiles', enabled: options.progress });
      },
      onTile: (done) => progress?.update(done),
      gate: (tile) => layerReady[tile.f.layer]!.promise,
      sources: { ...(streamF ? { f: streamF } : {}), ...(streamG ? { g: streamG } : {}) },
      null: nullOptions(options.null, plans.f.n, plans.g.n),
    },
    pool,
  );
  const [, run] = await Promise.all([loadF, running]);
  trace('tiles done');
  (progress as Progress | null)?.finish();

  const seconds = (performance.now() - started) / 1000;
  const scored = buildReport(f, g, run.reduction, {
    match: options.match,
    constantMode: options.constant,
    conv: options.conv,
    partial,
    kernel: run.kernel.name,
    threads: run.threads,
    block: run.block,
    tiles: run.tiles,
    seconds,
    io: streamF || streamG ? { F: streamF?.stats ?? null, G: streamG?.stats ?? null, memory } : null,
    null: run.null,
  });
  if (options.out !== null) writeAtomic(options.out, [`${JSON.stringify(scored.report, null, 2)}\n`]);
  if (options.matches !== null) {
    const sides = [
      { label: 'F' as const, self: f, other: g, state: run.reduction.forward, scores: scored.forward },
      { label: 'G' as const, self: g, other: f, state: run.reduction.backward, scores: scored.backward },
    ];
    writeAtomic(options.matches, matchesCsv(sides, options.match));
  }
  return scored;
}
