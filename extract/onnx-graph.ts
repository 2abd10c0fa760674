/**
 * The part of the ONNX runner that needs no runtime: decoding a model file,
 * reading its input, ordering its nodes, telling which values depend on the
 * input and which end a block, and re-encoding it with other graph outputs.
 */
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';
import { InputError } from '../shared/errors.js';
import { readSmallFile } from '../shared/formats/index.js';
import { checkShape } from './shapes.js';

const { onnx } = onnxProto;

export type OnnxModel = Onnx.ModelProto;
type ValueInfo = Onnx.IValueInfoProto;

interface Node {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

/** Protobuf refuses messages of 2 GiB or more; bigger models keep their weights in external files. */
const MAX_MODEL_BYTES = 2 ** 31 - 1;
const EXPORT_FIX = 'pass an .onnx model file as exported by torch.onnx.export, tf2onnx or onnx.save';
const FLOAT = onnx.TensorProto.DataType.FLOAT;
/** The largest fixed batch a model may declare (as `batch`'s limit): the runner pads each run to it. */
const MAX_FIXED_BATCH = 65536;

/** The one tensor the model is fed. */
export interface OnnxInput {
  readonly name: string;
  /** Every axis, batch first; null where the model leaves it open. */
  readonly dims: readonly (number | null)[];
}

/** A node output that depends on the input: a candidate layer (its type is known only to the runtime). */
export interface OnnxValue {
  readonly name: string;
  readonly kind: string;
  readonly block: boolean;
}

export interface OnnxGraph {
  readonly input: OnnxInput;
  /** In topological order. */
  readonly values: readonly OnnxValue[];
}

export function readOnnxModel(file: string): OnnxModel {
  let bytes: Uint8Array;
  try {
    bytes = readSmallFile(file, MAX_MODEL_BYTES, 'E_INPUT_FORMAT', 'models over 2 GiB keep their weights in external data files, which extract does not read');
  } catch (err) {
    if (err instanceof InputError) throw err;
    const missing = err instanceof Error && 'code' in err && err.code === 'ENOENT';
    const problem = missing ? 'no such file' : `cannot be read (${err instanceof Error ? err.message : String(err)})`;
    throw new InputError('E_INPUT_MISSING', file, problem, 'check the path to the .onnx file', { cause: err });
  }
  let model: OnnxModel;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, `is not an ONNX model (protobuf: ${err instanceof Error ? err.message : String(err)})`, EXPORT_FIX, {
      cause: err,
    });
  }
  // Protobuf decodes many byte strings without complaint; a model has at least these.
  const graph = model.graph;
  const opsets = model.opsetImport ?? [];
  if (!graph || opsets.length === 0 || !graph.node?.length || !graph.input?.length || !graph.output?.length) {
    throw new InputError('E_INPUT_FORMAT', file, 'is not an ONNX model (no graph with nodes, inputs and outputs)', EXPORT_FIX);
  }
  if (graph.initializer?.some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)) {
    throw new InputError(
      'E_INPUT_FORMAT',
      file,
      'keeps its weights in external data files, which extract does not read',
      'save the model with its weights inside',
    );
  }
  return model;
}

export function analyzeGraph(model: OnnxModel, file: string): OnnxGraph {
  const graph = model.graph!;
  const constants = new Set([...(graph.initializer ?? []).map((t) => t.name ?? ''), ...(graph.sparseInitializer ?? []).map((t) => t.values?.name ?? '')]);
  const input = modelInput(
    (graph.input ?? []).filter((i) => !constants.has(i.name ?? '')),
    file,
  );
  const given = (graph.node ?? []).map((n): Node => ({ name: n.name ?? '', op: n.opType ?? '', inputs: n.input ?? [], outputs: n.output ?? [] }));
  const nodes = topologicalOrder(given, [input.name, ...constants], file);
  // Values computed from weights alone (Constant nodes, shape arithmetic) do not vary over probes.
  const dependent = new Set([input.name]);
  for (const node of nodes) if (node.inputs.some((v) => dependent.has(v))) for (const v of node.outputs) dependent.add(v);
  const consumers = new Map<string, Node[]>();
  for (const node of nodes) {
    for (const v of node.inputs) {
      const list = consumers.get(v) ?? [];
      if (list.length === 0) consumers.set(v, list);
      list.push(node);
    }
  }
  const blocks = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  for (const node of nodes) {
    if (node.op === 'Concat' || GLOBAL_POOLS.has(node.op)) node.outputs.forEach((v) => blocks.add(v));
    // A residual join: Add of two probe-dependent values (not a bias Add), with the Relu after it ending the block.
    if (node.op === 'Add' && node.inputs.filter((v) => dependent.has(v)).length >= 2) {
      for (const next of consumers.get(node.outputs[0] ?? '') ?? []) if (next.op === 'Relu') next.outputs.forEach((v) => blocks.add(v));
    }
  }
  const values = nodes.flatMap((node) =>
    node.outputs.filter((v) => v !== '' && dependent.has(v)).map((name) => ({ name, kind: node.op, block: blocks.has(name) })),
  );
  return { input, values };
}

const GLOBAL_POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

function modelInput(inputs: readonly ValueInfo[], file: string): OnnxInput {
  const [only] = inputs;
  if (!only || inputs.length > 1) {
    const names = inputs.map((i) => i.name).join(', ');
    const problem = `takes ${inputs.length} inputs (${names}); extract feeds a model one input tensor`;
    throw new InputError('E_INPUT_SHAPE', file, problem, 'export the model with a single input, the batch of probes');
  }
  const name = only.name ?? '';
  const tensor = only.type?.tensorType;
  if (tensor?.elemType !== FLOAT) {
    const type = tensor ? dataTypeName(tensor.elemType ?? 0) : 'not a tensor';
    throw new InputError('E_INPUT_DTYPE', file, `input "${name}" is ${type}; extract feeds float32 probes`, 'export the model with a float32 input');
  }
  const dims = tensor.shape?.dim;
  if (!dims || dims.length < 2) {
    const problem = dims ? `input "${name}" has rank ${dims.length}` : `input "${name}" has no shape`;
    throw new InputError(
      'E_INPUT_SHAPE',
      file,
      `${problem}; extract needs a batch axis first, then one probe's axes`,
      'export the model with a shaped input, batch first',
    );
  }
  const [batch = null, ...probe] = dims.map((d) => positive(d.dimValue ?? 0));
  if (batch !== null && !(batch <= MAX_FIXED_BATCH)) {
    const problem = `input "${name}" has a fixed batch of ${batch} probes; extract runs at most ${MAX_FIXED_BATCH} at once`;
    throw new InputError('E_INPUT_SHAPE', file, problem, 'export the model with an open (dynamic) batch axis');
  }
  checkShape(file, `input "${name}"`, probe);
  return { name, dims: [batch, ...probe] };
}

function dataTypeName(code: number): string {
  const name = Object.entries(onnx.TensorProto.DataType).find(([, v]) => v === code)?.[0];
  return name ? name.toLowerCase() : `of element type ${code}`;
}

/** A dimension; an int64 field, which protobufjs gives as a Long where the `long` package is installed. */
function positive(v: number | { toNumber(): number }): number | null {
  const n = typeof v === 'number' ? v : v.toNumber();
  return n > 0 ? n : null;
}

/**
 * The nodes in an order where each comes after the producers of its inputs,
 * keeping the file's order where it already is one (ONNX requires that, not
 * every exporter keeps to it).
 */
function topologicalOrder(nodes: readonly Node[], given: readonly string[], file: string): Node[] {
  const ready = new Set(['', ...given]);
  const order: Node[] = [];
  let left = [...nodes];
  while (left.length > 0) {
    const waiting: Node[] = [];
    for (const node of left) {
      if (node.inputs.every((v) => ready.has(v))) {
        order.push(node);
        node.outputs.forEach((v) => ready.add(v));
      } else {
        waiting.push(node);
      }
    }
    if (waiting.length === left.length) {
      const node = waiting[0]!;
      const missing = node.inputs.find((v) => !ready.has(v));
      const problem = `node "${node.name || node.op}" reads "${missing}", which no node, input or initializer produces (or the graph has a cycle)`;
      throw new InputError('E_INPUT_FORMAT', file, problem, 'check the model with onnx.checker.check_model');
    }
    left = waiting;
  }
  return order;
}

/**
 * The model re-encoded with exactly `names` as its graph outputs. A name-only
 * ValueInfoProto is enough: the runtime infers type and shape. A graph output
 * keeps its declared type.
 */
export function withOutputs(model: OnnxModel, names: readonly string[]): Uint8Array {
  const declared = new Map((model.graph?.output ?? []).map((o) => [o.name, o]));
  const output = names.map((name) => declared.get(name) ?? onnx.ValueInfoProto.create({ name }));
  const graph = onnx.GraphProto.create({ ...model.graph!, output });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ ...model, graph })).finish();
}
