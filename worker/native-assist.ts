/**
 * Where the native addon is built, it also speeds up loading: the big shared
 * z buffers are advised onto transparent huge pages before they are first
 * written (page faults dominate filling fresh memory on virtual machines),
 * and the standardization loops run natively, bit-identical to the
 * TypeScript ones. Without the addon both fall back silently.
 */
import type { Allocate, StandardizeLoops } from '../shared/formats/index.js';
import { loadAddon, type NativeAddon } from './kernels/native.js';

let cached: NativeAddon | null | undefined;

function addon(): NativeAddon | null {
  if (cached === undefined) {
    try {
      cached = loadAddon();
    } catch {
      cached = null;
    }
  }
  return cached;
}

export const hugePageAllocate: Allocate = (bytes) => {
  const buffer = new SharedArrayBuffer(bytes);
  if (bytes >= 4 << 20) addon()?.adviseHugePages(new Uint8Array(buffer));
  return buffer;
};

/** Native standardization loops, or undefined to keep the TypeScript ones. */
export function nativeLoops(): StandardizeLoops | undefined {
  const a = addon();
  if (a === null || process.env['NEUROCORR_JS_STANDARDIZE'] === '1') return undefined;
  return { accumulate: a.standardizeAccumulate, write: a.standardizeWrite };
}
