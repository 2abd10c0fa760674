/**
 * The tile in TensorFlow.js ops: |F G^T|, then max/argMax along both axes.
 * Backends, in order: tfjs-node-gpu, tfjs-node (optional dependencies that
 * need libtensorflow), then the wasm backend, then the plain cpu backend.
 * A backend named by the caller is the only one tried.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import { allocTileResult, type TileResult } from '../../shared/tiles/index.js';
import type { Kernel, TileInput } from '../kernel.js';

type Tf = typeof TfCore;

import type { TfjsBackend } from '../kernel-options.js';

interface BackendStep {
  readonly id: TfjsBackend;
  load(): Promise<Tf>;
}

const importOptional = async (specifier: string): Promise<Tf> => (await import(specifier)) as Tf;

async function coreWith(backendModule: string, backend: string): Promise<Tf> {
  const tf = await import('@tensorflow/tfjs-core');
  // PROD silences tfjs's console banner about installing tfjs-node.
  tf.env().set('PROD', true);
  await import(backendModule);
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  return tf;
}

const STEPS: readonly BackendStep[] = [
  { id: 'gpu', load: () => importOptional('@tensorflow/tfjs-node-gpu') },
  { id: 'node', load: () => importOptional('@tensorflow/tfjs-node') },
  { id: 'wasm', load: () => coreWith('@tensorflow/tfjs-backend-wasm', 'wasm') },
  { id: 'cpu', load: () => coreWith('@tensorflow/tfjs-backend-cpu', 'cpu') },
];

const reason = (err: unknown): string => {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_MODULE_NOT_FOUND') return 'not installed';
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
};

/** Loads the first backend that works (or only `forced`); `notes` collects why earlier ones did not. */
export async function loadTfjsKernel(notes: string[], forced?: TfjsBackend): Promise<Kernel> {
  const steps = forced === undefined ? STEPS : STEPS.filter((s) => s.id === forced);
  for (const step of steps) {
    try {
      const tf = await step.load();
      await tf.ready();
      return tfjsKernel(tf, `tfjs-${step.id === 'gpu' || step.id === 'node' ? `node-${step.id}` : step.id}`);
    } catch (err) {
      notes.push(`tfjs-${step.id}: ${reason(err)}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could be loaded (${notes.join('; ')})`);
}

function tfjsKernel(tf: Tf, name: string): Kernel {
  return {
    name,
    async computeTile({ f, g, fCount, gCount, m, fStart, gStart }: TileInput): Promise<TileResult> {
      const outs = tf.tidy(() => {
        const abs = tf.abs(tf.matMul(tf.tensor2d(f, [fCount, m]), tf.tensor2d(g, [gCount, m]), false, true));
        return [tf.max(abs, 1), tf.argMax(abs, 1), tf.max(abs, 0), tf.argMax(abs, 0)] as const;
      });
      try {
        const [rowBest, rowArg, colBest, colArg] = await Promise.all(outs.map((t) => t.data()));
        const result = allocTileResult(fCount, gCount);
        result.rowBest.set(rowBest!);
        result.colBest.set(colBest!);
        // argMax returns the first maximum, which is the smallest index.
        for (let i = 0; i < fCount; i++) result.rowArg[i] = gStart + rowArg![i]!;
        for (let j = 0; j < gCount; j++) result.colArg[j] = fStart + colArg![j]!;
        return result;
      } finally {
        for (const t of outs) t.dispose();
      }
    },
  };
}
