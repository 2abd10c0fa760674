/**
 * Tiny ONNX models built with onnx-proto, deterministic weights, and an
 * independent float64 implementation of each, value by value.
 */
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';
import { rng } from './models.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** Per-probe values of every node output, by name, for `m` probes. */
export type Reference = (x: Float32Array, m: number) => Map<string, Float64Array>;

export interface TinyModel {
  readonly bytes: Uint8Array;
  readonly reference: Reference;
}

/** Weights rounded to float32, as the model stores them. */
function weights(seed: number, n: number, scale: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

const initializer = (name: string, dims: number[], values: Float32Array) => onnx.TensorProto.create({ name, dims, dataType: FLOAT, floatData: [...values] });

export function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): Onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim } } } });
}

const node = (opType: string, input: string[], output: string[], attribute: Onnx.IAttributeProto[] = []) =>
  onnx.NodeProto.create({ opType, input, output, name: `${opType}_${output[0]}`, attribute });
const ints = (name: string, values: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });
const int = (name: string, value: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });

export function encodeModel(graph: Onnx.IGraphProto): Uint8Array {
  const model = onnx.ModelProto.create({ irVersion: 8, producerName: 'neurocorr-test', opsetImport: [{ domain: '', version: 13 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * x [N, 4] -> Gemm (no bias) h_mm -> Add (a bias from a Constant node) h_pre -> Relu h -> Gemm y [N, 3].
 * `batch` fixes the batch axis (a model exported for one batch size).
 */
export function mlp(batch: number | string = 'N'): TinyModel {
  const w1 = weights(1, 4 * 6, 0.8);
  const b1 = weights(2, 6, 0.3);
  const w2 = weights(3, 6 * 3, 0.8);
  const b2 = weights(4, 3, 0.3);
  const graph = onnx.GraphProto.create({
    name: 'mlp',
    node: [
      onnx.NodeProto.create({
        opType: 'Constant',
        output: ['b1'],
        name: 'bias',
        attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: initializer('', [6], b1) })],
      }),
      node('Gemm', ['x', 'W1'], ['h_mm']),
      node('Add', ['h_mm', 'b1'], ['h_pre']),
      node('Relu', ['h_pre'], ['h']),
      node('Gemm', ['h', 'W2', 'b2'], ['y']),
    ],
    initializer: [initializer('W1', [4, 6], w1), initializer('W2', [6, 3], w2), initializer('b2', [3], b2)],
    input: [valueInfo('x', [batch, 4])],
    output: [valueInfo('y', [batch, 3])],
  });
  const reference: Reference = (x, m) => {
    const hMm = gemm(Float64Array.from(x), m, 4, w1, 6, false, null);
    const hPre = hMm.map((v, i) => v + b1[i % 6]!);
    const h = hPre.map(relu);
    return new Map([
      ['h_mm', hMm],
      ['h_pre', hPre],
      ['h', h],
      ['y', gemm(h, m, 6, w2, 3, false, b2)],
    ]);
  };
  return { bytes: encodeModel(graph), reference };
}

/**
 * x [N, 3, 8, 8] -> Conv c1 [4, 8, 8] -> Relu r1 -> Conv c2 -> Add (c2 + r1) s -> Relu r2
 * -> GlobalAveragePool g [4, 1, 1] -> Flatten f [4] -> Gemm y [5]. `shuffled`
 * stores the nodes out of topological order.
 */
export function convNet(shuffled = false): TinyModel {
  const w1 = weights(11, 4 * 3 * 9, 0.5);
  const b1 = weights(12, 4, 0.2);
  const w2 = weights(13, 4 * 4 * 9, 0.4);
  const b2 = weights(14, 4, 0.2);
  const w3 = weights(15, 5 * 4, 0.8);
  const b3 = weights(16, 5, 0.2);
  const pads = [ints('pads', [1, 1, 1, 1])];
  const nodes = [
    node('Conv', ['x', 'W1', 'B1'], ['c1'], pads),
    node('Relu', ['c1'], ['r1']),
    node('Conv', ['r1', 'W2', 'B2'], ['c2'], pads),
    node('Add', ['c2', 'r1'], ['s']),
    node('Relu', ['s'], ['r2']),
    node('GlobalAveragePool', ['r2'], ['g']),
    node('Flatten', ['g'], ['f']),
    node('Gemm', ['f', 'W3', 'B3'], ['y'], [int('transB', 1)]),
  ];
  const graph = onnx.GraphProto.create({
    name: 'cnn',
    node: shuffled ? [5, 1, 7, 0, 4, 2, 6, 3].map((i) => nodes[i]!) : nodes,
    initializer: [
      initializer('W1', [4, 3, 3, 3], w1),
      initializer('B1', [4], b1),
      initializer('W2', [4, 4, 3, 3], w2),
      initializer('B2', [4], b2),
      initializer('W3', [5, 4], w3),
      initializer('B3', [5], b3),
    ],
    input: [valueInfo('x', ['N', 3, 8, 8])],
    output: [valueInfo('y', ['N', 5])],
  });
  const reference: Reference = (x, m) => {
    const c1 = conv3x3(Float64Array.from(x), m, 3, 4, 8, w1, b1);
    const r1 = c1.map(relu);
    const c2 = conv3x3(r1, m, 4, 4, 8, w2, b2);
    const s = c2.map((v, i) => v + r1[i]!);
    const r2 = s.map(relu);
    const g = new Float64Array(m * 4).map((_, i) => r2.subarray(i * 64, (i + 1) * 64).reduce((a, b) => a + b, 0) / 64);
    return new Map([
      ['c1', c1],
      ['r1', r1],
      ['c2', c2],
      ['s', s],
      ['r2', r2],
      ['g', g],
      ['f', g],
      ['y', gemm(g, m, 4, w3, 5, true, b3)],
    ]);
  };
  return { bytes: encodeModel(graph), reference };
}

const relu = (v: number) => Math.max(0, v);

/** [m, k] x [k, n] (or [n, k] transposed) + bias. */
function gemm(a: Float64Array, m: number, k: number, w: Float32Array, n: number, transB: boolean, bias: Float32Array | null): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[j]! : 0;
      for (let t = 0; t < k; t++) sum += a[i * k + t]! * w[transB ? j * k + t : t * n + j]!;
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** NCHW, 3 x 3 kernel, stride 1, zero padding 1, square maps of side `size`. */
function conv3x3(x: Float64Array, m: number, cin: number, cout: number, size: number, w: Float32Array, b: Float32Array): Float64Array {
  const out = new Float64Array(m * cout * size * size);
  for (let p = 0; p < m; p++) {
    for (let o = 0; o < cout; o++) {
      for (let y = 0; y < size; y++) {
        for (let z = 0; z < size; z++) {
          let sum = b[o]!;
          for (let c = 0; c < cin; c++) {
            for (let dy = -1; dy <= 1; dy++) {
              for (let dz = -1; dz <= 1; dz++) {
                const yy = y + dy;
                const zz = z + dz;
                if (yy < 0 || yy >= size || zz < 0 || zz >= size) continue;
                sum += x[((p * cin + c) * size + yy) * size + zz]! * w[((o * cin + c) * 3 + dy + 1) * 3 + dz + 1]!;
              }
            }
          }
          out[((p * cout + o) * size + y) * size + z] = sum;
        }
      }
    }
  }
  return out;
}
