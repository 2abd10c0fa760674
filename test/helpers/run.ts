/** A pair scored in-process through the embedded job (internals on purpose: tests set the arrival order, tile size and threads). */
import { openSources, runEmbedded } from '../../dist/coordinator/embedded.js';
import type { ConstantMode, ConvMode, Layout, NullRequest } from '../../dist/shared/core/index.js';
import { planPair, type SpatialRequest } from '../../dist/shared/formats/index.js';
import { pairReport, type JobTile } from '../../dist/shared/job/index.js';
import type { KernelChoice, KernelOptions } from '../../dist/worker/loader.js';

export interface RunOptions {
  readonly kernel: KernelChoice | KernelOptions;
  readonly threads?: number;
  readonly tile?: number;
  readonly conv?: ConvMode;
  /** Channels: the layout of layers whose files do not say, and the pooling. */
  readonly layout?: Layout;
  readonly spatial?: SpatialRequest;
  readonly constant?: ConstantMode;
  readonly memory?: number;
  readonly null?: NullRequest;
  readonly order?: (tiles: JobTile[]) => JobTile[];
}

export async function runPair(fPath: string, gPath: string, o: RunOptions) {
  const conv = o.conv ?? 'units';
  const shape = { layout: o.layout ?? null, spatial: o.spatial ?? null };
  const planned = planPair(fPath, gPath, { conv, ...shape, layers: null, layersF: null, layersG: null, sample: null, probes: null });
  const sources = openSources(
    [
      { path: fPath, plan: planned.f },
      { path: gPath, plan: planned.g },
    ],
    [{ f: 0, g: 1 }],
    o.memory ?? 2 ** 31,
  );
  const run = await runEmbedded(sources, [{ f: 0, g: 1 }], {
    kernel: typeof o.kernel === 'string' ? { choice: o.kernel } : o.kernel,
    threads: o.threads ?? 1,
    memory: o.memory ?? 2 ** 31,
    ...(o.tile !== undefined ? { block: o.tile } : {}),
    ...(o.order ? { order: o.order } : {}),
    ...(o.null ? { null: o.null } : {}),
  });
  const { plan } = run.progress;
  const scored = pairReport(run.progress, 0, {
    match: 'paper',
    constantMode: o.constant ?? 'include',
    conv,
    spatial: planned.spatial,
    partial: null,
    kernel: run.kernel.name,
    threads: run.threads,
    block: plan.block,
    tiles: plan.tiles.filter((t) => t.kind === 'main').length,
    seconds: 0,
    nullSeconds: run.clock.pair(0).nullSeconds,
  });
  return { ...scored, reduction: run.progress.pairs[0]!.reduction, kernelName: run.kernel.name, progress: run.progress, io: run.io };
}
