/**
 * A thread of the extract pool: loads TensorFlow.js and the model once, then
 * runs batches; each batch's layers come back as one moved buffer, layer
 * after layer.
 */
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { move, workerData } from 'piscina';
import { NeurocorrError } from '../shared/errors.js';
import { openModel } from './open.js';
import type { ModelRunner } from './runner.js';
import { loadTf } from './tfjs.js';
import { OPENED, type ModelPoolData, type ModelPoolTask, type ThreadError } from './tfjs-pool-protocol.js';

const data = workerData as ModelPoolData;
// V8's gc, from a context made while the pool holds --expose-gc on (it does until every thread has opened its model).
const gc = ((): (() => void) | null => {
  try {
    const f: unknown = runInNewContext('gc');
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
})();

async function open(): Promise<ModelRunner> {
  const tf = await loadTf();
  if (tf.getBackend() !== data.backend) {
    if (data.backend === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend(data.backend))) throw new Error(`the TensorFlow.js ${data.backend} backend does not start in an extract thread`);
  }
  const { runner } = await openModel(data.model, (line) => parentPort?.postMessage({ log: line }));
  if (data.resolve !== null) await runner.resolve?.(data.resolve);
  return runner;
}

const opened = await open().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
// Tells the pool this thread is done loading: stopping a thread while it loads modules can abort the process.
parentPort?.postMessage(OPENED);

/** Bytes of batch arrays after which the thread runs a full garbage collection (as extract does in the main thread). */
const GC_BYTES = 8 * 1024 * 1024;
let garbage = 0;

const thrown = (err: unknown): ThreadError => ({
  error: {
    message: err instanceof Error ? err.message : String(err),
    code: err instanceof NeurocorrError ? err.code : null,
    exitCode: err instanceof NeurocorrError ? err.exitCode : null,
  },
});

export default async function run(task: ModelPoolTask): Promise<ArrayBuffer | ThreadError> {
  if (opened instanceof Error) return thrown(opened);
  try {
    const outs = await opened.run(task.inputs, task.count, data.names);
    // One buffer: the layers' lengths (uint32), then their values, layer after layer.
    const head = outs.length + 1;
    const buffer = new ArrayBuffer(4 * (head + outs.reduce((n, a) => n + a.length, 0)));
    new Uint32Array(buffer, 0, head).set([outs.length, ...outs.map((a) => a.length)]);
    let at = head;
    for (const a of outs) {
      new Float32Array(buffer, 4 * at, a.length).set(a);
      at += a.length;
    }
    // The batch's arrays die young and V8 collects them lazily: without this, each thread's RSS climbs with M.
    garbage += task.inputs.byteLength + 2 * buffer.byteLength;
    if (garbage > GC_BYTES && gc !== null) {
      gc();
      garbage = 0;
    }
    return move(buffer) as unknown as ArrayBuffer;
  } catch (err) {
    return thrown(err);
  }
}
