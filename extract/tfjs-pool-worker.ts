/**
 * A thread of the extract pool: loads TensorFlow.js and the model once, then
 * runs batches; each batch's layers come back as one moved buffer, layer
 * after layer.
 */
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { NeurocorrError } from '../shared/errors.js';
import { openModel } from './open.js';
import { firstNonFinite } from './output.js';
import type { ModelRunner } from './runner.js';
import { loadTf } from './tfjs.js';
import { OPENED, type ModelPoolData, type ModelPoolReply, type ModelPoolTask, type ThreadError } from './tfjs-pool-protocol.js';

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

export default async function run(task: ModelPoolTask): Promise<ModelPoolReply | ThreadError> {
  if (opened instanceof Error) return thrown(opened);
  try {
    // Arrays that own their whole buffer move as they are; a view is copied first (moving it would move all its buffer).
    const outs = (await opened.run(task.inputs, task.count, data.names)).map((a) =>
      a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice(),
    );
    // Checked here, in parallel, rather than by the main thread that writes them.
    const reply: ModelPoolReply = { outs, nonFinite: outs.map(firstNonFinite) };
    // The batch's arrays die young and V8 collects them lazily: without this, each thread's RSS climbs with M.
    garbage += task.inputs.byteLength + outs.reduce((n, a) => n + a.byteLength, 0);
    if (garbage > GC_BYTES && gc !== null) {
      gc();
      garbage = 0;
    }
    const movable = { [transferableSymbol]: outs.map((a) => a.buffer), [valueSymbol]: reply };
    return move(movable as unknown as ArrayBuffer) as unknown as ModelPoolReply;
  } catch (err) {
    return thrown(err);
  }
}
