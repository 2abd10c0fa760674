/**
 * The fused C++ kernel (worker/native). The addon is looked up in an ordered
 * list of build locations; the first that loads wins, and if none does, the
 * error names every place tried.
 */
import { createRequire } from 'node:module';
import type { StandardizeLoops } from '../../shared/formats/index.js';
import { allocTileResult, type TileResult } from '../../shared/core/index.js';
import { cacheSizes, type CacheSizes } from '../caches.js';
import type { Kernel, TileInput } from '../kernel.js';

export type Isa = 'avx512' | 'avx2' | 'scalar';

export interface NativeAddon {
  info(): { isas: Isa[]; best: Isa; l1d: number; l2: number; l3: number };
  adviseHugePages(view: ArrayBufferView): boolean;
  standardizeAccumulate: StandardizeLoops['accumulate'];
  standardizeWrite: StandardizeLoops['write'];
  computeTile(
    f: Float32Array,
    g: Float32Array,
    fCount: number,
    gCount: number,
    m: number,
    fStart: number,
    gStart: number,
    gChunk: number,
    isa: Isa | 'auto',
    out: ArrayBuffer,
    fKey?: number,
  ): Isa;
}

// Compiled code runs from dist/worker/kernels/; the addon is built under worker/native/ at the package root.
const PACKAGE_ROOT = new URL('../../../', import.meta.url);
const BUILDS = ['worker/native/build/Release/neurocorr.node', 'worker/native/build/Debug/neurocorr.node'];

/** Candidates in order: the Release and Debug builds, or only NEUROCORR_NATIVE_ADDON when set. */
export function addonCandidates(): string[] {
  const override = process.env['NEUROCORR_NATIVE_ADDON'];
  return override ? [override] : BUILDS.map((b) => new URL(b, PACKAGE_ROOT).pathname);
}

export function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of addonCandidates()) {
    try {
      return require(path) as NativeAddon;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      failures.push(`${path} (${code === 'MODULE_NOT_FOUND' ? 'absent' : err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
    }
  }
  throw new Error(`native addon not built (run npm ci or npm rebuild); tried ${failures.join(', ')}`);
}

/**
 * G columns are swept in chunks whose packed form (chunk x m float32) fills
 * half of L2, leaving the other half for the F panel and the state.
 */
export function nativeChunk(m: number, caches: CacheSizes): number {
  return Math.max(32, Math.floor(caches.l2 / 2 / (4 * m)));
}

export function nativeKernel(addon = loadAddon(), isa: Isa | 'auto' = (process.env['NEUROCORR_NATIVE_ISA'] as Isa | undefined) ?? 'auto'): Kernel {
  const info = addon.info();
  const chosen = isa === 'auto' ? info.best : isa;
  if (!info.isas.includes(chosen)) throw new Error(`NEUROCORR_NATIVE_ISA=${isa}: this CPU supports ${info.isas.join(', ')}`);
  const caches = cacheSizes(info);
  return {
    name: `native-${chosen}`,
    computeTile({ f, g, fCount, gCount, m, fStart, gStart, fKey }: TileInput): TileResult {
      const result = allocTileResult(fCount, gCount);
      addon.computeTile(f, g, fCount, gCount, m, fStart, gStart, nativeChunk(m, caches), chosen, result.rowBest.buffer as ArrayBuffer, fKey ?? 0);
      return result;
    },
  };
}
