/** TensorFlow.js for training: extract's backend set-up (wasm, else cpu) plus every op's gradient, which training needs and extract does not. */
import type * as TfCore from '@tensorflow/tfjs-core';
import { loadTf } from '#dist/extract/tfjs.js';

export type Tf = typeof TfCore;

export async function loadTrainingTf(backend?: 'wasm' | 'cpu'): Promise<Tf> {
  // tfjs-core's node bundle has no gradients; tfjs-layers' bundle registers them all on load
  // (tfjs-core's own register_all_gradients.js is ESM with extensionless imports that Node cannot resolve).
  await import('@tensorflow/tfjs-layers');
  if (backend === undefined) return loadTf();
  const tf = await import('@tensorflow/tfjs-core');
  tf.env().set('PROD', true);
  await import(backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend(backend))) throw new Error(`the tfjs ${backend} backend did not start`);
  return tf;
}
