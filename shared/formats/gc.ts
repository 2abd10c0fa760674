/**
 * A full garbage collection, on demand. Large buffers that die young (each
 * encoded shard in `prepare`) are collected lazily by V8, so without an occasional
 * full collection RSS climbs well past what is live and past --memory.
 *
 * Importing this module changes nothing: V8's `gc` is fetched at the first
 * collection, from a context made while `--expose-gc` is briefly on, and the
 * flag is set back at once, so no other context sees it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

function exposeGc(): () => void {
  // Started with --expose-gc: use that one and leave the flag alone.
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as () => void;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

export function collectGarbage(): void {
  gc ??= exposeGc();
  gc();
}
