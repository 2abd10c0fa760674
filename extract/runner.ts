/**
 * The contract between `neurocorr extract` and a model format: a runner
 * opens one model file, says what it takes and which layers it has, and runs
 * a batch of probes to the layers asked for. One runner per format
 * (TensorFlow.js LayersModel and GraphModel, ONNX); extract itself (probes,
 * preprocessing, layer selection, streaming output, fingerprint) knows none of
 * their details.
 */

export type ModelFormat = 'tfjs-layers' | 'tfjs-graph' | 'onnx';

/** Where the channel axis of an image tensor is. */
export type ImageLayout = 'nhwc' | 'nchw';

export interface ModelInputInfo {
  /** Tensor name (GraphModel and ONNX feed by name). */
  readonly name: string;
  /** Shape of one probe, batch axis dropped; a dimension the model leaves open is null. */
  readonly shape: readonly (number | null)[];
  /** For image inputs (rank 3 per probe), where the channels are; null for other inputs. */
  readonly layout: ImageLayout | null;
}

export interface ModelLayerInfo {
  /** Name as the user selects it with `--layers` (a Keras layer name, a graph node, an ONNX value name). */
  readonly name: string;
  /** Shape of one probe's activation, batch axis dropped (null where only a run can tell). */
  readonly shape: readonly (number | null)[];
  /** For rank-3 activations, where the channels are. */
  readonly layout: ImageLayout | null;
  /** The op or layer class (`Conv2D`, `Relu`, `Add`, ...), for `--list-layers` and the default selection. */
  readonly kind: string;
  /** A block output (the end of a residual or inception block, a stage, the logits): what extract takes by default. */
  readonly block: boolean;
}

export interface ModelRunner {
  readonly format: ModelFormat;
  readonly input: ModelInputInfo;
  /** Every selectable layer, in graph (depth) order. */
  readonly layers: readonly ModelLayerInfo[];
  /**
   * Runs `count` probes (`batch`: count x the input's per-probe size, float32,
   * already preprocessed and in the input's layout) and returns, per name in
   * `layers`, count x that layer's per-probe size, row-major per probe, as
   * float32.
   */
  run(batch: Float32Array, count: number, layers: readonly string[]): Promise<Float32Array[]>;
  /**
   * Optional: fixes the input's open dimensions to `input` (one probe's
   * shape) for every later run, and returns `layers` with the shapes such a
   * probe gives. Extract calls it before any run when the input or a
   * selected layer has an open dimension; without it, a layer whose shape
   * stays open is written flat, [M, neurons].
   */
  resolve?(input: readonly number[]): Promise<readonly ModelLayerInfo[]>;
  dispose(): Promise<void>;
}

export interface RunnerOptions {
  /** Threads one run may use (ONNX Runtime's intra-op threads); default: the runtime's own choice. */
  readonly threads?: number;
}

/** Opens a model file (a tfjs `model.json`, an `.onnx` file) as a runner; a bad or unsupported model is an InputError naming the file. */
export type OpenRunner = (path: string, options?: RunnerOptions) => Promise<ModelRunner>;
