/**
 * A full garbage collection, on demand. Large buffers that die young (encoded
 * shards, tile results) are collected lazily by V8, so without an occasional
 * full collection RSS climbs well past what is live and past --memory.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;

/** Calls collectGarbage every `every` calls. */
export function periodicGarbageCollection(every: number): () => void {
  let calls = 0;
  return () => {
    if (++calls % every === 0) collectGarbage();
  };
}
