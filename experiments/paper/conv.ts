/**
 * A 'same'-padded, stride-1 convolution the wasm backend can train. The
 * backend has Conv2D and Conv2DBackpropInput but no Conv2DBackpropFilter,
 * and the cpu backend's convolutions are slow; so the forward pass and the
 * input gradient stay on the backend's own kernels, and the filter gradient
 * is computed as patches times a matrix: dW = patches(x)ᵀ · dy, with the
 * patches built from kh·kw slices of the padded input.
 */
import type * as TfCore from '@tensorflow/tfjs-core';

type Tf = typeof TfCore;

/** dW[i, j, c, f] = Σ_{b,h,w} xpad[b, h+i, w+j, c] · dy[b, h, w, f] for a kh x kw kernel (odd sides). */
export function filterGradient(tf: Tf, x: TfCore.Tensor4D, dy: TfCore.Tensor4D, kh: number, kw: number): TfCore.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const f = dy.shape[3];
    const padded = tf.pad(x, [
      [0, 0],
      [(kh - 1) / 2, (kh - 1) / 2],
      [(kw - 1) / 2, (kw - 1) / 2],
      [0, 0],
    ]);
    const slices: TfCore.Tensor4D[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) slices.push(tf.slice(padded, [0, i, j, 0], [b, h, w, c]));
    const patches = tf.reshape(tf.concat(slices, 3), [b * h * w, kh * kw * c]);
    return tf.reshape(tf.matMul(patches, tf.reshape(dy, [b * h * w, f]), true, false), [kh, kw, c, f]);
  });
}

/** conv2d(x, w, 1, 'same') with the gradient above; x is NHWC, w is [kh, kw, in, out]. */
export function trainableConv(tf: Tf): (x: TfCore.Tensor4D, w: TfCore.Tensor4D) => TfCore.Tensor4D {
  const op = tf.customGrad((...args: (TfCore.Tensor | TfCore.GradSaveFunc)[]) => {
    const [x, w, save] = args as [TfCore.Tensor4D, TfCore.Tensor4D, TfCore.GradSaveFunc];
    save([x, w]);
    return {
      value: tf.conv2d(x, w, 1, 'same'),
      gradFunc: (dy: TfCore.Tensor, saved: TfCore.Tensor[]) => {
        const [sx, sw] = saved as [TfCore.Tensor4D, TfCore.Tensor4D];
        const d = dy as TfCore.Tensor4D;
        return [tf.conv2dTranspose(d, sw, sx.shape, 1, 'same'), filterGradient(tf, sx, d, sw.shape[0], sw.shape[1])];
      },
    };
  });
  return (x, w) => op(x, w) as TfCore.Tensor4D;
}
