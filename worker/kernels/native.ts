/**
 * The fused C++ kernel (worker/native). The addon is looked up in an ordered
 * list of build locations; the first that loads wins, and if none does, the
 * error names every place tried.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { KernelUnavailableError } from '../../shared/errors.js';
import type { StandardizeLoops } from '../../shared/formats/index.js';
import { allocTileResult, type TileResult } from '../../shared/core/index.js';
import { cacheSizes, type CacheSizes } from '../caches.js';
import type { Kernel, TileInput } from '../kernel.js';

export type Isa = 'avx512' | 'avx2' | 'scalar';

/**
 * The tile kernel of one ISA and G chunk. `out` receives rowBest f64[fCount],
 * colBest f64[gCount], rowArg u32[fCount], colArg u32[gCount] (global
 * indices), the layout of a TileResult's buffer.
 */
export interface NativeTileKernel {
  (input: TileInput, out: ArrayBuffer): void;
  /** What the requested ISA resolved to ('auto' gives the best one). */
  readonly isa: Isa;
  readonly gChunk: number;
}

export interface NativeAddon {
  info(): { isas: Isa[]; best: Isa; l1d: number; l2: number; l3: number };
  adviseHugePages(view: ArrayBufferView): boolean;
  standardizeAccumulate: StandardizeLoops['accumulate'];
  standardizeWrite: StandardizeLoops['write'];
  /** Throws (RangeError, or Error for an ISA this CPU lacks) here, not on the first tile. */
  tileKernel(options: { readonly isa: Isa | 'auto'; readonly gChunk: number }): NativeTileKernel;
}

export interface AddonOptions {
  /** The addon's path, replacing the list of build locations (relative to the working directory). */
  readonly addon?: string;
}

// Compiled code runs from dist/worker/kernels/; the addon is built under worker/native/ at the package root.
const PACKAGE_ROOT = new URL('../../../', import.meta.url);
const BUILDS = ['worker/native/build/Release/neurocorr.node', 'worker/native/build/Debug/neurocorr.node'];

/** Candidates in order: the Release and Debug builds, or only `options.addon`. */
export function addonCandidates(options: AddonOptions = {}): string[] {
  return options.addon ? [resolve(options.addon)] : BUILDS.map((b) => new URL(b, PACKAGE_ROOT).pathname);
}

// Per thread (module state is per thread): the addon, or why it did not load, by addon path ('' for the default list).
const loaded = new Map<string, NativeAddon | KernelUnavailableError>();

export function loadAddon(options: AddonOptions = {}): NativeAddon {
  const key = options.addon ?? '';
  let entry = loaded.get(key);
  if (entry === undefined) {
    const require = createRequire(import.meta.url);
    const failures: string[] = [];
    for (const path of addonCandidates(options)) {
      try {
        entry = require(path) as NativeAddon;
        break;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        failures.push(`${path} (${code === 'MODULE_NOT_FOUND' ? 'absent' : err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
      }
    }
    entry ??= new KernelUnavailableError(`native addon not built (run npm ci or npm rebuild); tried ${failures.join(', ')}`);
    loaded.set(key, entry);
  }
  if (entry instanceof Error) throw entry;
  return entry;
}

/**
 * G columns are swept in chunks whose packed form (chunk x m float32) fills
 * half of L2, leaving the other half for the F panel and the state.
 */
export function nativeChunk(m: number, caches: CacheSizes): number {
  return Math.max(32, Math.floor(caches.l2 / 2 / (4 * m)));
}

export interface NativeKernelOptions extends AddonOptions {
  /** 'auto' (the default) picks the best ISA this CPU runs. */
  readonly isa?: Isa | 'auto';
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
