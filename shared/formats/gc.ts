/**
 * A full garbage collection, on demand. Large buffers that die young (each
 * encoded shard in `prepare`) are collected lazily by V8, so without an occasional
 * full collection RSS climbs well past what is live and past --memory.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;
