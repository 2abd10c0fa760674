/**
 * Piscina thread entry. Each thread loads its kernel once (the kernel options
 * arrive in workerData); a task is one tile's input, whose blocks are
 * SharedArrayBuffer views the thread reads in place, and its result goes
 * back as one moved buffer.
 */
import { parentPort } from 'node:worker_threads';
import { move, workerData } from 'piscina';
import { loadKernel } from './loader.js';
import { LOADED, type KernelDescription, type PoolData, type PoolTask } from './pool-protocol.js';

const data = workerData as PoolData;
// A load failure is reported through 'describe': errors crossing the thread boundary lose their type.
const loaded = await loadKernel(data.kernel).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
// Tells the pool this thread has finished loading (see EmbeddedPool.destroy).
parentPort?.postMessage(LOADED);

export default async function run(task: PoolTask): Promise<KernelDescription | ArrayBuffer> {
  if (loaded instanceof Error) {
    if (task.kind === 'describe') return { error: loaded.message };
    throw loaded;
  }
  if (task.kind === 'describe') return { name: loaded.kernel.name, notes: loaded.notes };
  const result = await loaded.kernel.computeTile(task);
  return move(result.rowBest.buffer as ArrayBuffer) as unknown as ArrayBuffer;
}
