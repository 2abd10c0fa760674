/**
 * The batch loop of extract: probes are read and run `step` at a time, up
 * to `slots` batches at once (one per thread), and each batch's activations
 * are handed on in probe order; a batch is written while the next ones run
 * (so memory holds `slots` batches running and one being written). The
 * partition into batches depends only on `step`, never on the threads.
 */

export interface BatchRun {
  /** Batches run at once: 1 in the main thread, one per thread of a pool. */
  readonly slots: number;
  run(inputs: Float32Array, count: number): Promise<BatchOutput>;
}

export interface BatchOutput {
  /** One array per layer. */
  readonly outs: Float32Array[];
  /** Each layer's first NaN or infinity (-1: none) where the thread that ran the batch looked already, else null. */
  readonly nonFinite: readonly number[] | null;
}

export interface Batch extends BatchOutput {
  readonly start: number;
  readonly count: number;
  /** Bytes of the batch's input and activations. */
  readonly bytes: number;
}

export async function runBatches(
  m: number,
  step: number,
  read: (start: number, count: number) => Promise<Float32Array>,
  runner: BatchRun,
  write: (batch: Batch) => Promise<void>,
): Promise<void> {
  const pending: Promise<Batch>[] = [];
  let writing: Promise<void> = Promise.resolve();
  const hand = async (next: Promise<Batch>): Promise<void> => {
    const batch = await next;
    // In probe order: the batch before has been written first.
    await writing;
    writing = write(batch);
    writing.catch(() => undefined);
  };
  try {
    for (let start = 0; start < m; start += step) {
      if (pending.length >= runner.slots) await hand(pending.shift()!);
      const count = Math.min(step, m - start);
      const inputs = await read(start, count);
      // Measured now: the run may move the input's buffer to a thread.
      const size = inputs.byteLength;
      const batch = runner
        .run(inputs, count)
        .then(({ outs, nonFinite }) => ({ start, count, outs, nonFinite, bytes: size + outs.reduce((n, a) => n + a.byteLength, 0) }));
      // Awaited in turn below; until then a failure must not count as unhandled.
      batch.catch(() => undefined);
      pending.push(batch);
    }
    while (pending.length > 0) await hand(pending.shift()!);
    await writing;
  } finally {
    // A failed batch stops the loop: let the others (and the last write) settle before the threads and files are closed.
    await Promise.allSettled([...pending, writing]);
  }
}
