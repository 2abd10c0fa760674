/**
 * The runner for a tfjs LayersModel (Keras models converted by
 * tensorflowjs_converter): every layer with one output and one call is
 * selectable; a run builds (once per selection) a model from the input to
 * the selected layers' outputs.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { InputError } from '../shared/errors.js';
import { blockOutputs, poolsGlobally, type BlockKinds, type GraphNode } from './blocks.js';
import type { ImageLayout, ModelLayerInfo, ModelRunner } from './runner.js';
import { checkShape } from './shapes.js';
import { diskHandler, loadError, loadTf, withFallback, type TfjsModelFile } from './tfjs.js';

type Layer = LayersModel['layers'][number];

const KINDS: BlockKinds = {
  add: new Set(['Add']),
  concat: new Set(['Concatenate']),
  pool: new Set(['MaxPooling2D', 'AveragePooling2D', 'MaxPooling1D', 'AveragePooling1D']),
  globalPool: new Set(['GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D']),
  weighted: new Set(['Dense', 'Conv1D', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose']),
  after: new Set(['Activation', 'ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'Softmax', 'ThresholdedReLU', 'BatchNormalization']),
};

/** Layers a run can output: one call (a shared layer has several), one output tensor. */
const selectable = (layer: Layer): boolean => layer.getClassName() !== 'InputLayer' && layer.inboundNodes.length === 1 && !Array.isArray(layer.output);

function perProbe(shape: readonly (number | null)[]): (number | null)[] {
  return shape.slice(1).map((d) => (d === null || d < 0 ? null : d));
}

/** Where a rank-3 output keeps its channels: the layer's own data format, else that of the layer it reads. */
function layoutOf(layer: Layer, seen = 0): ImageLayout {
  const format = layer.getConfig()['dataFormat'];
  if (format === 'channelsFirst') return 'nchw';
  if (format === 'channelsLast') return 'nhwc';
  const from = layer.inboundNodes[0]?.inboundLayers[0];
  return from === undefined || seen > 1000 ? 'nhwc' : layoutOf(from, seen + 1);
}

export async function openLayersRunner(file: TfjsModelFile, log?: (line: string) => void): Promise<ModelRunner> {
  const tf = await loadTf();
  const tfl = await import('@tensorflow/tfjs-layers');
  let model: LayersModel;
  try {
    model = await tfl.loadLayersModel(diskHandler(tf, file));
  } catch (err) {
    throw loadError(file.path, err);
  }
  if (model.inputs.length !== 1) {
    model.dispose();
    throw new InputError('E_INPUT_SHAPE', file.path, `the model has ${model.inputs.length} inputs`, 'extract feeds models of one input');
  }
  const input = model.inputs[0]!;
  if (!model.layers.some(selectable)) {
    model.dispose();
    throw new InputError('E_INPUT_SHAPE', file.path, 'the model has no layer to extract', 'pass a model with layers');
  }
  const inputShape = perProbe(input.shape);
  const usable = model.layers.filter(selectable);
  const names = new Set(usable.map((l) => l.name));
  const nodes: GraphNode[] = usable.map((layer) => ({
    name: layer.name,
    kind: layer.getClassName(),
    inputs: layer.inboundNodes[0]!.inboundLayers.map((l) => l.name).filter((n) => names.has(n)),
  }));
  const blocks = blockOutputs(
    nodes,
    model.outputs.map((t) => t.sourceLayer.name),
    KINDS,
  );
  const info = (layer: Layer, shape: readonly (number | null)[]): ModelLayerInfo => ({
    name: layer.name,
    kind: layer.getClassName(),
    shape,
    layout: shape.length === 3 ? layoutOf(layer) : null,
    block: blocks.has(layer.name) || poolsGlobally(layer.getClassName(), shape, KINDS),
  });
  const layers = usable.map((layer) => info(layer, perProbe(layer.outputShape as (number | null)[])));
  const subModels = new Map<string, LayersModel>();
  const subModel = (selected: readonly string[]): LayersModel => {
    const key = JSON.stringify(selected);
    let sub = subModels.get(key);
    if (sub === undefined) {
      sub = tfl.model({ inputs: input, outputs: selected.map((name) => model.getLayer(name).output as typeof input) });
      subModels.set(key, sub);
    }
    return sub;
  };
  const predict = (batch: Float32Array, count: number, shape: readonly number[], selected: readonly string[]) =>
    tf.tidy(() => {
      const y = subModel(selected).predict(tf.tensor(batch, [count, ...shape], 'float32'));
      return Array.isArray(y) ? y : [y];
    });
  // The per-probe input shape runs use: the model's, with open dimensions fixed by `resolve`.
  let fixed: readonly number[] | null = inputShape.every((d) => d !== null) ? (inputShape as number[]) : null;
  const runShape = (): readonly number[] => {
    if (fixed === null)
      throw new InputError('E_INPUT_SHAPE', file.path, `its input ${JSON.stringify(inputShape)} has open dimensions`, 'give the input size (--size)');
    return fixed;
  };
  const data = async (t: { data(): Promise<ArrayLike<number>> }): Promise<Float32Array> => {
    const values = await t.data();
    return values instanceof Float32Array ? values : Float32Array.from(values);
  };
  return {
    format: 'tfjs-layers',
    // The input layer's name: the tensor's (pixels_1) takes a suffix each time a process loads the model again.
    input: { name: input.sourceLayer.name, shape: inputShape, layout: inputShape.length === 3 ? 'nhwc' : null },
    layers,
    async run(batch, count, selected) {
      const outs = await withFallback(tf, async () => predict(batch, count, runShape(), selected), log);
      try {
        return await Promise.all(outs.map(data));
      } finally {
        tf.dispose(outs);
      }
    },
    async resolve(shape) {
      checkShape(file.path, `its input "${input.sourceLayer.name}"`, shape);
      fixed = [...shape];
      const outs = await withFallback(tf, async () => predict(new Float32Array(shape.reduce((a, b) => a * b, 1)), 1, shape, [...names]), log);
      const shapes = outs.map((t) => t.shape.slice(1));
      tf.dispose(outs);
      return usable.map((layer, i) => info(layer, shapes[i]!));
    },
    async dispose() {
      model.dispose();
    },
  };
}
