/**
 * The runner for a tfjs GraphModel (TensorFlow SavedModels converted by
 * tensorflowjs_converter): every node computed from the input is
 * selectable by its node name; a run asks the executor for those nodes.
 * Shapes come from one probe of zeros through every such node, run when the
 * model is opened (or by `resolve` when the input has open dimensions);
 * nodes whose output is not float32 or not per probe are left out.
 */
import type { GraphModel } from '@tensorflow/tfjs-converter';
import { InputError } from '../shared/errors.js';
import { blockOutputs, poolsGlobally, type BlockKinds, type GraphNode } from './blocks.js';
import type { ModelLayerInfo, ModelRunner } from './runner.js';
import { checkShape } from './shapes.js';
import { diskHandler, loadError, loadTf, withFallback, type Tf, type TfjsModelFile } from './tfjs.js';

const KINDS: BlockKinds = {
  add: new Set(['Add', 'AddV2']),
  concat: new Set(['ConcatV2', 'Concat']),
  pool: new Set(['MaxPool', 'AvgPool']),
  globalPool: new Set(['Mean']),
  weighted: new Set(['MatMul', '_FusedMatMul', 'Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative']),
  after: new Set(['Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Softmax', 'BiasAdd', 'FusedBatchNorm', 'FusedBatchNormV3']),
};

const NOT_LAYERS = new Set(['Const', 'Placeholder', 'PlaceholderWithDefault', 'NoOp']);

interface JsonNode {
  readonly name: string;
  readonly op: string;
  readonly input?: readonly string[];
}

/** A node's name as an input reference spells it: no `^` (control), no `:k` (output index). */
const nodeName = (ref: string): string => ref.replace(/^\^/, '').replace(/:\d+$/, '');

/** Nodes computed from the input, in graph order, each with the inputs it reads among them. */
function dependentNodes(all: readonly JsonNode[], input: string): GraphNode[] {
  const dependent = new Set([input]);
  const nodes: GraphNode[] = [];
  // Converted graphs list nodes in topological order; repeat until nothing changes for those that do not.
  for (let changed = true; changed;) {
    changed = false;
    for (const node of all) {
      if (dependent.has(node.name)) continue;
      const inputs = (node.input ?? []).filter((ref) => !ref.startsWith('^')).map(nodeName);
      if (inputs.some((i) => dependent.has(i))) {
        dependent.add(node.name);
        changed = true;
      }
    }
  }
  for (const node of all) {
    if (!dependent.has(node.name) || NOT_LAYERS.has(node.op)) continue;
    const inputs = (node.input ?? []).filter((ref) => !ref.startsWith('^')).map(nodeName);
    nodes.push({ name: node.name, kind: node.op, inputs: inputs.filter((i) => dependent.has(i) && i !== input) });
  }
  return nodes;
}

export async function openGraphRunner(file: TfjsModelFile, log?: (line: string) => void): Promise<ModelRunner> {
  const tf = await loadTf();
  const tfc = await import('@tensorflow/tfjs-converter');
  let model: GraphModel;
  try {
    model = await tfc.loadGraphModel(diskHandler(tf, file));
  } catch (err) {
    throw loadError(file.path, err);
  }
  const fail = (problem: string, fix: string): InputError => {
    model.dispose();
    return new InputError('E_INPUT_SHAPE', file.path, problem, fix);
  };
  if (model.inputs.length !== 1) throw fail(`the model has ${model.inputs.length} inputs`, 'extract feeds models of one input');
  const input = model.inputs[0]!;
  if (input.shape === undefined || input.shape.length === 0)
    throw fail(`its input ${input.name} has no known shape`, 'convert the model with a fixed input shape');
  const inputShape = input.shape.slice(1).map((d) => (d < 0 ? null : d));
  const topology = (file.json.modelTopology ?? {}) as { node?: JsonNode[] };
  const nodes = dependentNodes(topology.node ?? [], nodeName(input.name));
  if (nodes.length === 0) throw fail('no node of the graph is computed from its input', 'pass a model whose graph reads its input');
  const blocks = blockOutputs(nodes, model.outputNodes.map(nodeName), KINDS);
  // Until a probe has run, a node's shape is unknown (shown as one open dimension).
  const open = (node: GraphNode): ModelLayerInfo => ({ name: node.name, kind: node.kind, shape: [null], layout: null, block: blocks.has(node.name) });
  let fixed: readonly number[] | null = null;
  let layers: readonly ModelLayerInfo[] = nodes.map(open);

  // execute() runs graphs without control flow; the others need executeAsync(), which warns on the rest.
  let dynamic = false;
  const execute = async (tfx: Tf, batch: Float32Array, count: number, names: readonly string[]) => {
    const x = tfx.tensor(batch, [count, ...fixed!], 'float32');
    try {
      if (!dynamic) {
        try {
          const y = model.execute({ [input.name]: x }, [...names]);
          return Array.isArray(y) ? y : [y];
        } catch (err) {
          if (!(err instanceof Error && /executeAsync/.test(err.message))) throw err;
          dynamic = true;
        }
      }
      const y = await model.executeAsync({ [input.name]: x }, [...names]);
      return Array.isArray(y) ? y : [y];
    } finally {
      x.dispose();
    }
  };
  // One probe of zeros through every node: the shapes, and which nodes give a float32 row per probe.
  const resolve = async (shape: readonly number[]): Promise<readonly ModelLayerInfo[]> => {
    checkShape(file.path, `its input "${input.name}"`, shape);
    fixed = [...shape];
    const outs = await withFallback(
      tf,
      () =>
        execute(
          tf,
          new Float32Array(shape.reduce((a, b) => a * b, 1)),
          1,
          nodes.map((n) => n.name),
        ),
      log,
    );
    const kept: ModelLayerInfo[] = [];
    for (const [i, node] of nodes.entries()) {
      const out = outs[i]!;
      if (out.dtype !== 'float32' || out.rank === 0 || out.shape[0] !== 1) continue;
      const perProbe = out.shape.slice(1);
      const block = blocks.has(node.name) || poolsGlobally(node.kind, perProbe, KINDS);
      kept.push({ ...open(node), shape: perProbe, layout: perProbe.length === 3 ? 'nhwc' : null, block });
    }
    tf.dispose(outs);
    layers = kept;
    return kept;
  };
  if (inputShape.every((d) => d !== null)) {
    try {
      await resolve(inputShape as number[]);
    } catch (err) {
      model.dispose();
      throw loadError(file.path, err);
    }
  }
  return {
    format: 'tfjs-graph',
    input: { name: input.name, shape: inputShape, layout: inputShape.length === 3 ? 'nhwc' : null },
    get layers() {
      return layers;
    },
    async run(batch, count, selected) {
      if (fixed === null)
        throw new InputError('E_INPUT_SHAPE', file.path, `its input ${JSON.stringify(inputShape)} has open dimensions`, 'give the input size (--size)');
      const outs = await withFallback(tf, () => execute(tf, batch, count, selected), log);
      try {
        return await Promise.all(
          outs.map(async (t) => {
            const values = await t.data();
            return values instanceof Float32Array ? values : Float32Array.from(values);
          }),
        );
      } finally {
        tf.dispose(outs);
      }
    },
    resolve,
    async dispose() {
      model.dispose();
    },
  };
}
