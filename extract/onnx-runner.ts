/**
 * Runs ONNX models for `neurocorr extract` with onnxruntime-node. The layers
 * are the model's float node outputs that depend on its input. To read them,
 * the model is re-encoded with them as its graph outputs: one session per set
 * of layers asked for. (The runtime's `fetches` argument is no way round that:
 * onnxruntime-node 1.22 labels the values it returns by the wrong names.)
 */
import { InputError, InternalError } from '../shared/errors.js';
import { analyzeGraph, type OnnxInput, type OnnxModel, readOnnxModel, withOutputs } from './onnx-graph.js';
import { loadOnnxRuntime, type Ort, type OrtSession, type OrtSessionOptions, type OrtTensor } from './onnx-runtime.js';
import type { ImageLayout, ModelInputInfo, ModelLayerInfo, ModelRunner, OpenRunner, RunnerOptions } from './runner.js';

const FLOAT_TYPES = new Set(['float32', 'float64']);
const CHECK_FIX = 'check the model with onnx.checker.check_model, or re-export it';

export const openOnnxRunner: OpenRunner = async (path, options = {}) => {
  const model = readOnnxModel(path);
  const graph = analyzeGraph(model, path);
  const ort = loadOnnxRuntime(path);
  // Types and shapes come from the runtime's shape inference, in a session that outputs every candidate.
  const probe = await createSession(ort, withOutputs(model, [...new Set(graph.values.map((v) => v.name))]), 'disabled', path, {});
  const metadata = new Map(probe.outputMetadata.map((m) => [m.name, m]));
  await probe.release();
  const layers = graph.values.flatMap(({ name, kind, block }): MutableLayer[] => {
    const m = metadata.get(name);
    if (!m?.isTensor || !FLOAT_TYPES.has(m.type)) return [];
    const shape = m.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : null));
    return [{ name, shape, layout: shape.length === 3 ? 'nchw' : null, kind, block }];
  });
  return new OnnxRunner(path, ort, model, graph.input, layers, options);
};

type MutableLayer = { -readonly [K in keyof ModelLayerInfo]: ModelLayerInfo[K] };

class OnnxRunner implements ModelRunner {
  readonly format = 'onnx';
  readonly input: ModelInputInfo;
  readonly layers: readonly ModelLayerInfo[];
  private readonly byName: ReadonlyMap<string, MutableLayer>;
  private readonly sessions = new Map<string, Promise<OrtSession>>();

  constructor(
    private readonly file: string,
    private readonly ort: Ort,
    private readonly model: OnnxModel,
    private readonly feed: OnnxInput,
    layers: MutableLayer[],
    private readonly options: RunnerOptions,
  ) {
    const shape = feed.dims.slice(1);
    this.input = { name: feed.name, shape, layout: shape.length === 3 ? imageLayout(shape) : null };
    this.layers = layers;
    this.byName = new Map(layers.map((l) => [l.name, l]));
  }

  async run(batch: Float32Array, count: number, names: readonly string[]): Promise<Float32Array[]> {
    const wanted = [...new Set(names)];
    for (const name of wanted) if (!this.byName.has(name)) throw this.unknownLayer(name);
    if (wanted.length === 0 || count === 0) return names.map(() => new Float32Array(0));
    const size = batch.length / count;
    if (!Number.isInteger(size)) throw new InternalError(`onnx runner: a batch of ${batch.length} values is not ${count} probes`);
    const dims = this.probeDims(size);
    const session = await this.session(wanted);
    // A model exported with a fixed batch size runs that many probes at a time, the last run padded with zeros.
    const fixed = this.feed.dims[0] ?? null;
    const step = fixed ?? count;
    const parts = new Map(wanted.map((name) => [name, [] as Float32Array[]]));
    for (let first = 0; first < count; first += step) {
      const rows = Math.min(step, count - first);
      const slice = batch.subarray(first * size, (first + rows) * size);
      const data = rows < step ? padded(slice, step * size) : slice;
      const outputs = await this.runSession(session, new this.ort.Tensor('float32', data, [step, ...dims]));
      for (const name of wanted) {
        const values = this.values(outputs, name, step);
        parts.get(name)!.push(values.subarray(0, (values.length / step) * rows));
      }
    }
    const joined = new Map(wanted.map((name) => [name, concat(parts.get(name)!)]));
    return names.map((name) => joined.get(name)!);
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map(async (s) => (await s.catch(() => null))?.release()));
  }

  /** The input's dimensions for a probe of `size` values; open ones (a free image size) are solved for where that is unambiguous. */
  private probeDims(size: number): number[] {
    const shape = this.input.shape;
    const known = shape.reduce<number>((p, d) => p * (d ?? 1), 1);
    const open = shape.flatMap((d, i) => (d === null ? [i] : []));
    const rest = size / known;
    const side = Math.round(Math.sqrt(rest));
    // Two open axes of an image input: its height and width; probes are square.
    const fill = open.length === 1 ? rest : open.length === 2 && shape.length === 3 && side * side === rest ? side : null;
    if (!Number.isInteger(rest) || (open.length === 0 && rest !== 1)) {
      throw new InternalError(`onnx runner: ${this.file} takes probes of shape [${shape.join(', ')}], not of ${size} values`);
    }
    if (open.length > 0 && fill === null) {
      const problem = `input "${this.feed.name}" has shape [${shape.map((d) => d ?? '?').join(', ')}] per probe; a probe of ${size} values does not tell its open dims`;
      throw new InputError('E_INPUT_SHAPE', this.file, problem, 'export the model with a fixed input shape');
    }
    return shape.map((d) => d ?? fill!);
  }

  private session(names: readonly string[]): Promise<OrtSession> {
    const key = JSON.stringify([...names].sort());
    let session = this.sessions.get(key);
    if (!session) {
      session = createSession(this.ort, withOutputs(this.model, names), 'all', this.file, this.options);
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  private async runSession(session: OrtSession, tensor: OrtTensor): Promise<Record<string, OrtTensor>> {
    try {
      return await session.run({ [this.feed.name]: tensor });
    } catch (err) {
      const problem = `ONNX Runtime failed on a batch of shape [${tensor.dims.join(', ')}] (${errorLine(err)})`;
      throw new InputError('E_INPUT_SHAPE', this.file, problem, CHECK_FIX, { cause: err });
    }
  }

  /** `name`'s values from a run of `rows` probes, as float32; fills in the dims the model left open. */
  private values(outputs: Record<string, OrtTensor>, name: string, rows: number): Float32Array {
    const tensor = outputs[name];
    if (!tensor) throw new InternalError(`onnx runner: the session for ${this.file} returned no "${name}"`);
    if (tensor.dims[0] !== rows) {
      const problem = `layer "${name}" has shape [${tensor.dims.join(', ')}] for a batch of ${rows} probes: its first axis is not the batch axis`;
      throw new InputError('E_INPUT_SHAPE', this.file, problem, 'select layers that keep the batch axis first');
    }
    const layer = this.byName.get(name)!;
    if (layer.shape.length !== tensor.dims.length - 1 || layer.shape.includes(null)) {
      layer.shape = tensor.dims.slice(1);
      layer.layout = layer.shape.length === 3 ? 'nchw' : null;
    }
    const data = tensor.data;
    if (data instanceof Float32Array) return data;
    if (data instanceof Float64Array) return Float32Array.from(data);
    throw new InternalError(`onnx runner: layer "${name}" of ${this.file} came back as ${tensor.type}`);
  }

  private unknownLayer(name: string): InputError {
    const some = this.layers.slice(0, 8).map((l) => l.name);
    const listed = `${some.join(', ')}${this.layers.length > some.length ? `, ... (${this.layers.length} in all)` : ''}`;
    const problem = `has no layer "${name}" (a layer is a float node output that depends on the input)`;
    return new InputError('E_LAYER_MAP', this.file, problem, `pick layers from its list: ${listed}`);
  }
}

/** ONNX vision models take NCHW; a channel count of 1 or 3 at the end (and not at the front) says NHWC. */
function imageLayout(shape: readonly (number | null)[]): ImageLayout {
  const isChannels = (d: number | null | undefined) => d === 1 || d === 3;
  return !isChannels(shape[0]) && isChannels(shape[2]) ? 'nhwc' : 'nchw';
}

async function createSession(
  ort: Ort,
  model: Uint8Array,
  optimization: OrtSessionOptions['graphOptimizationLevel'],
  file: string,
  { threads }: RunnerOptions,
): Promise<OrtSession> {
  // One operator at a time, each on `threads` threads: the cores go to the convolutions, as in PyTorch. Idle threads
  // sleep rather than spin: meanwhile the main thread writes the batch before (ResNet-50 on 2 cores: 7% faster).
  const threading =
    threads !== undefined
      ? { intraOpNumThreads: threads, interOpNumThreads: 1, extra: { session: { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } } }
      : {};
  try {
    return await ort.InferenceSession.create(model, { graphOptimizationLevel: optimization, logSeverityLevel: 3, ...threading });
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, `ONNX Runtime cannot load it (${errorLine(err)})`, CHECK_FIX, { cause: err });
  }
}

const errorLine = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

function padded(values: Float32Array, length: number): Float32Array {
  const out = new Float32Array(length);
  out.set(values);
  return out;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
