// Regenerates the two ONNX models of examples/zoo-models (run after `npm ci`: node examples/generate-onnx.mjs):
// tiny residual conv nets on [N, 3, 16, 16] inputs (the images of examples/tfjs/probes), `x` with seeded
// random weights and `y` the same weights with 30% noise added (a sibling of x).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const OUT = join(import.meta.dirname, 'zoo-models', 'models');

function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SHAPES = { W1: [6, 3, 3, 3], B1: [6], W2: [6, 6, 3, 3], B2: [6], W3: [8, 6, 3, 3], B3: [8], W4: [10, 8], B4: [10] };
const count = (dims) => dims.reduce((a, b) => a * b, 1);

function weights(seed) {
  const r = rng(seed);
  return Object.fromEntries(Object.entries(SHAPES).map(([name, dims]) => [name, Float32Array.from({ length: count(dims) }, () => (r() * 2 - 1) * 0.4)]));
}

function noisy(base, seed, amount) {
  const r = rng(seed);
  return Object.fromEntries(Object.entries(base).map(([name, w]) => [name, w.map((v) => v + (r() * 2 - 1) * 0.4 * amount)]));
}

const valueInfo = (name, dims) =>
  onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
const node = (opType, input, output, attribute = []) => onnx.NodeProto.create({ opType, input, output, name: output[0], attribute });
const ints = (name, values) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });
const int = (name, value) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });

function model(w) {
  const pads = [ints('pads', [1, 1, 1, 1])];
  const graph = onnx.GraphProto.create({
    name: 'resnet-tiny',
    node: [
      node('Conv', ['pixels', 'W1', 'B1'], ['conv1'], pads),
      node('Relu', ['conv1'], ['relu1']),
      node('Conv', ['relu1', 'W2', 'B2'], ['conv2'], pads),
      node('Add', ['conv2', 'relu1'], ['add']),
      node('Relu', ['add'], ['relu2']),
      node('MaxPool', ['relu2'], ['pool'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
      node('Conv', ['pool', 'W3', 'B3'], ['conv3'], pads),
      node('Relu', ['conv3'], ['relu3']),
      node('GlobalAveragePool', ['relu3'], ['gap']),
      node('Flatten', ['gap'], ['flat']),
      node('Gemm', ['flat', 'W4', 'B4'], ['fc'], [int('transB', 1)]),
    ],
    initializer: Object.entries(SHAPES).map(([name, dims]) => onnx.TensorProto.create({ name, dims, dataType: FLOAT, floatData: [...w[name]] })),
    input: [valueInfo('pixels', ['N', 3, 16, 16])],
    output: [valueInfo('fc', ['N', 10])],
  });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({ irVersion: 8, producerName: 'neurocorr-example', opsetImport: [{ domain: '', version: 13 }], graph }),
  ).finish();
}

mkdirSync(OUT, { recursive: true });
const x = weights(20261207);
writeFileSync(join(OUT, 'x.onnx'), model(x));
writeFileSync(join(OUT, 'y.onnx'), model(noisy(x, 7, 0.3)));
console.log(`wrote ${OUT}/x.onnx and y.onnx`);
