/**
 * Algorithm 1 of the paper: a substitute two-layer CNN is trained on the
 * test data only, and after each of its N_ep training epochs every image
 * takes one FGSM step, x ← clip(x + ε·sign(∇ₓ loss(C(x), y)), 0, 1), against
 * the substitute as it stands. Labels are the data's own (no oracle
 * queries); only the last iterate is kept. Clipping to the pixel range is
 * ours: the algorithm as printed does not say.
 */
import { initNet, lossOf, train, CNN, type Net } from './nets.js';
import { PIXELS, type Dataset } from './data.js';
import type { Tf } from './tf.js';

export interface AttackOptions {
  readonly epsilon: number;
  readonly iterations: number;
  readonly seed: number;
  readonly batch: number;
}

/** One FGSM step of every image against `net`. */
export function fgsmStep(tf: Tf, net: Net, images: Float32Array, labels: Uint8Array, epsilon: number, batch = 500): Float32Array {
  const out = new Float32Array(images.length);
  const n = labels.length;
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const stepped = tf.tidy(() => {
      const x = tf.tensor2d(images.subarray(s * PIXELS, (s + m) * PIXELS), [m, PIXELS]);
      const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels.subarray(s, s + m)), 'int32'), 10);
      const g = tf.grad((xi) => lossOf(tf, net, xi as typeof x, y))(x);
      return tf.clipByValue(tf.add(x, tf.mul(tf.sign(g), epsilon)), 0, 1);
    });
    out.set(stepped.dataSync() as Float32Array, s * PIXELS);
    stepped.dispose();
  }
  return out;
}

/** P_{N_ep} of Algorithm 1 on `test`. */
export function substituteAttack(tf: Tf, test: Dataset, o: AttackOptions): Float32Array {
  const substitute = initNet(tf, CNN, o.seed + 7919);
  const optimizer = tf.train.adam(1e-3);
  let p: Float32Array = test.images.slice();
  for (let it = 1; it <= o.iterations; it++) {
    train(tf, substitute, { images: p, labels: test.labels }, { epochs: 1, batch: o.batch, seed: o.seed * 1000 + it, optimizer });
    p = fgsmStep(tf, substitute, p, test.labels, o.epsilon);
  }
  substitute.dispose();
  optimizer.dispose();
  return p;
}
