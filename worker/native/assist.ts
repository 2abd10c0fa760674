/**
 * Where the native addon is built, it also speeds up loading: the big shared
 * z buffers are advised onto transparent huge pages before they are first
 * written (page faults dominate filling fresh memory on virtual machines),
 * and the standardization loops run natively, bit-identical to the
 * TypeScript ones. Without the addon both fall back silently.
 */
import type { StandardizeLoops } from '../../shared/formats/index.js';
import { loadAddon, type AddonOptions, type NativeAddon } from './addon.js';

export interface NativeLoopsOptions extends AddonOptions {
  /** Keep the TypeScript loops even where the addon loads. */
  readonly disabled?: boolean;
}

function tryAddon(options: AddonOptions): NativeAddon | null {
  try {
    return loadAddon(options);
  } catch {
    return null;
  }
}

/** A SharedArrayBuffer of `bytes`, advised onto huge pages when it is big and the addon loads. */
export function hugePageAllocate(bytes: number, options: AddonOptions = {}): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(bytes);
  if (bytes >= 4 << 20) tryAddon(options)?.adviseHugePages(new Uint8Array(buffer));
  return buffer;
}

/** Native standardization loops, or undefined to keep the TypeScript ones. */
export function nativeLoops(options: NativeLoopsOptions = {}): StandardizeLoops | undefined {
  const addon = options.disabled ? null : tryAddon(options);
  return addon ? { accumulate: addon.standardizeAccumulate, write: addon.standardizeWrite } : undefined;
}
