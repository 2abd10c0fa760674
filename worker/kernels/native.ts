/** The fused C++ kernel (worker/native), through the addon's per-ISA tile kernels. */
import { allocTileResult, type TileResult } from '../../shared/tiles/index.js';
import { cacheSizes, type CacheSizes } from '../caches.js';
import type { Kernel, TileInput } from '../kernel.js';
import { loadAddon, type AddonOptions, type Isa, type NativeAddon, type NativeTileKernel } from '../native/addon.js';

export interface NativeKernelOptions extends AddonOptions {
  /** 'auto' (the default) picks the best ISA this CPU runs. */
  readonly isa?: Isa | 'auto';
}

/**
 * G columns are swept in chunks whose packed form (chunk x m float32) fills
 * half of L2, leaving the other half for the F panel and the state.
 */
export function nativeChunk(m: number, caches: CacheSizes): number {
  return Math.max(32, Math.floor(caches.l2 / 2 / (4 * m)));
}

/** Throws at creation for an ISA that is unknown or that this CPU lacks. */
export function nativeKernel(options: NativeKernelOptions = {}, addon: NativeAddon = loadAddon(options)): Kernel {
  const caches = cacheSizes(addon.info());
  const create = (isa: Isa | 'auto', m: number) => addon.tileKernel({ isa, gChunk: nativeChunk(m, caches) });
  // The G chunk depends on m, so one bound kernel per m (a pool serving several jobs sees a few).
  // The first is made here, so that a bad ISA fails now, and it tells what 'auto' resolved to.
  const bound = new Map<number, NativeTileKernel>([[1, create(options.isa ?? 'auto', 1)]]);
  const isa = bound.get(1)!.isa;
  const forM = (m: number): NativeTileKernel => {
    let tile = bound.get(m);
    if (tile === undefined) bound.set(m, (tile = create(isa, m)));
    return tile;
  };
  return {
    name: `native-${isa}`,
    computeTile(input: TileInput): TileResult {
      const result = allocTileResult(input.fCount, input.gCount);
      forM(input.m)(input, result.rowBest.buffer as ArrayBuffer);
      return result;
    },
  };
}
