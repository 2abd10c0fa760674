/** What the pool and its threads (pool-worker.ts) exchange. */
import type { TileInput } from './kernel.js';
import type { KernelOptions } from './kernel-options.js';

export interface PoolData {
  readonly kernel: KernelOptions;
}

export type PoolTask = { readonly kind: 'describe' } | ({ readonly kind: 'tile' } & TileInput);

/** The message a thread posts once its modules and kernel are loaded. */
export const LOADED = 'neurocorr:thread-loaded';

export type KernelDescription = { readonly name: string; readonly notes: readonly string[] } | { readonly error: string };
