/** What the extract pool (tfjs-pool.ts) and its threads (tfjs-pool-worker.ts) send each other. */
import type { ErrorCode, ExitCode } from '../shared/errors.js';

export interface ModelPoolData {
  /** The model file (model.json), opened once per thread. */
  readonly model: string;
  /** One probe's input shape to fix the model's open dimensions to (as the main thread's `resolve` did), or null. */
  readonly resolve: readonly number[] | null;
  /** The layers each run returns, in this order. */
  readonly names: readonly string[];
  /** The backend the main thread's model ended on ('wasm', or 'cpu' where wasm failed): every thread runs on it, so outputs do not depend on the thread. */
  readonly backend: string;
}

/** One batch: `count` probes, moved to the thread. */
export interface ModelPoolTask {
  readonly inputs: Float32Array;
  readonly count: number;
}

/** A batch's activations, one array per layer (each moved, never copied), and each one's first NaN or infinity (-1: none). */
export interface ModelPoolReply {
  readonly outs: Float32Array[];
  readonly nonFinite: number[];
}

/** An error thrown in a thread, as its type is lost crossing the boundary. */
export interface ThreadError {
  readonly error: { readonly message: string; readonly code: ErrorCode | null; readonly exitCode: ExitCode | null };
}

/** A thread's posted messages: it has opened its model (or failed to), or a log line. */
export const OPENED = 'neurocorr-extract-opened';
export interface LogMessage {
  readonly log: string;
}
