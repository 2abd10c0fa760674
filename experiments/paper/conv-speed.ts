/**
 * `node dist-dev/experiments/paper/conv-speed.js`: how fast the CNN trains
 * on each TensorFlow.js set-up this project can install offline: the wasm
 * backend with the patches-times-matrix filter gradient (what the paper run
 * uses), the cpu backend with it, and the cpu backend with tfjs's own conv2d
 * gradients. Prints milliseconds per batch of 64 and the ratios.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import { CNN, initNet, train } from './nets.js';
import { loadDataset, split } from './data.js';
import { loadTrainingTf } from './tf.js';

const BATCHES = Number(process.argv[2] ?? 20);
const BATCH = 64;

async function timeOn(backend: 'wasm' | 'cpu', nativeGrad: boolean): Promise<number> {
  const tf = await loadTrainingTf(backend);
  const d = split(loadDataset('mnist'), 1, (BATCHES * BATCH * 4) / 3 + 1).train;
  const conv2d = tf.conv2d;
  // The tfjs gradient: the net's conv with tfjs's own conv2d (and its Conv2DBackpropFilter).
  const tfx = nativeGrad ? { ...tf, customGrad: () => (x: TfCore.Tensor4D, w: TfCore.Tensor4D) => conv2d(x, w, 1, 'same') } : tf;
  const net = initNet(tfx as typeof TfCore, CNN, 1);
  const optimizer = tf.train.adam(1e-3);
  train(tf, net, { images: d.images.subarray(0, BATCH * 784 * 2), labels: d.labels.subarray(0, BATCH * 2) }, { epochs: 1, batch: BATCH, seed: 1, optimizer });
  const started = performance.now();
  train(tf, net, d, { epochs: 1, batch: BATCH, seed: 1, optimizer });
  const ms = (performance.now() - started) / (d.labels.length / BATCH);
  net.dispose();
  return ms;
}

const mode = process.argv[3];
if (mode !== undefined) {
  const [backend, grad] = mode.split(':') as ['wasm' | 'cpu', string];
  process.stdout.write(`${JSON.stringify({ mode, msPerBatch: await timeOn(backend, grad === 'tfjs') })}\n`);
} else {
  const { spawnSync } = await import('node:child_process');
  const rows: [string, number][] = [];
  for (const m of ['wasm:patches', 'cpu:patches', 'cpu:tfjs']) {
    const r = spawnSync(process.execPath, [process.argv[1]!, String(BATCHES), m], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${m}: ${r.stderr}`);
    rows.push([m, (JSON.parse(r.stdout) as { msPerBatch: number }).msPerBatch]);
  }
  const base = rows[0]![1];
  for (const [m, ms] of rows) process.stdout.write(`${m.padEnd(14)} ${ms.toFixed(1).padStart(8)} ms/batch  ${(ms / base).toFixed(2)}x wasm:patches\n`);
}
