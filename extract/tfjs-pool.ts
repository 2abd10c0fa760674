/**
 * A pool of TensorFlow.js backends for extract: one thread per backend, each
 * with its own copy of the model, running one batch at a time (the main
 * thread's model is one more, startBackends). Batches go to
 * the threads and their activations come back as moved buffers (never
 * copied across). A batch's result does not depend on the thread that ran
 * it: every thread runs the same single-threaded backend on the same batch.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { InternalError, NeurocorrError } from '../shared/errors.js';
import { collectGarbage } from '../shared/formats/index.js';
import type { BatchOutput, BatchRun } from './batches.js';
import type { ModelRunner } from './runner.js';
import { loadTf } from './tfjs.js';
import { OPENED, type LogMessage, type ModelPoolData, type ModelPoolReply, type ModelPoolTask, type ThreadError } from './tfjs-pool-protocol.js';

const WORKER = fileURLToPath(new URL('./tfjs-pool-worker.js', import.meta.url));

export interface ModelPoolOptions extends ModelPoolData {
  readonly threads: number;
  readonly log?: (line: string) => void;
}

export interface ModelPool {
  readonly threads: number;
  /** Runs `count` probes on a free thread; `inputs` is moved there (it is empty afterwards). One array per layer of `names`. */
  run(inputs: Float32Array, count: number): Promise<BatchOutput>;
  /** Waits for threads still loading, then stops them. */
  destroy(): Promise<void>;
}

/** Starts `threads` threads, each loading TensorFlow.js and the model. */
export async function startModelPool(options: ModelPoolOptions): Promise<ModelPool> {
  const { threads, log } = options;
  const { Piscina } = await import('piscina');
  const workerData: ModelPoolData = { model: options.model, resolve: options.resolve, names: options.names, backend: options.backend };
  // Each thread collects its batches' garbage as the main thread does (without it, RSS climbs with M by tens of
  // MiB a thread): V8's gc is exposed while the threads start, and only then. The main thread takes its own first.
  collectGarbage();
  setFlagsFromString('--expose-gc');
  let exposed = true;
  const hide = () => {
    if (exposed) setFlagsFromString('--no-expose-gc');
    exposed = false;
  };
  const pool = new Piscina<ModelPoolTask, ModelPoolReply | ThreadError>({
    filename: WORKER,
    workerData,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
  });
  let opened = 0;
  const said = new Set<string>();
  pool.on('message', (message: unknown) => {
    if (message === OPENED && ++opened === threads) hide();
    else if (typeof (message as LogMessage | null)?.log === 'string') {
      // Every thread says the same (a fallback to the cpu backend): once is enough.
      const line = (message as LogMessage).log;
      if (!said.has(line)) log?.(line);
      said.add(line);
    }
  });
  return {
    threads,
    async run(inputs, count) {
      // A view into a larger buffer would move (and empty) all of it.
      const own = inputs.byteOffset === 0 && inputs.byteLength === inputs.buffer.byteLength ? inputs : inputs.slice();
      const reply = await pool.run({ inputs: own, count }, { transferList: [own.buffer as ArrayBuffer] });
      if ('error' in reply) {
        const { message, code, exitCode } = reply.error;
        throw code !== null && exitCode !== null ? new NeurocorrError(code, message, exitCode) : new InternalError(`extract thread: ${message}`);
      }
      return reply;
    },
    async destroy() {
      for (let waited = 0; opened < threads && waited < 60_000; waited += 10) await delay(10);
      hide();
      await pool.destroy();
    },
  };
}

/**
 * `threads` TensorFlow.js backends over batches: the main thread's (its
 * runner, already loaded) and `threads - 1` pool threads. A batch goes to a
 * free pool thread, else to the main thread; the caller keeps at most
 * `threads` batches in flight. Every backend is the one the main thread's
 * model is on (wasm, or cpu after a fallback).
 */
export async function startBackends(runner: ModelRunner, options: Omit<ModelPoolOptions, 'backend'>): Promise<BatchRun & { destroy(): Promise<void> }> {
  const backend = (await loadTf()).getBackend();
  const pool = await startModelPool({ ...options, threads: options.threads - 1, backend });
  let poolBusy = 0;
  let mainBusy = false;
  return {
    slots: options.threads,
    async run(inputs, count) {
      if (mainBusy || poolBusy < pool.threads) {
        poolBusy++;
        try {
          return await pool.run(inputs, count);
        } finally {
          poolBusy--;
        }
      }
      mainBusy = true;
      try {
        return { outs: await runner.run(inputs, count, options.names), nonFinite: null };
      } finally {
        mainBusy = false;
      }
    },
    destroy: () => pool.destroy(),
  };
}
