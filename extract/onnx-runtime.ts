/**
 * onnxruntime-node, an optional dependency, loaded when an ONNX model is
 * opened. Typed here by the few parts the runner uses, so that neurocorr
 * builds without it.
 */
import { createRequire } from 'node:module';
import { InternalError } from '../shared/errors.js';

export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export type OrtValueMetadata = { readonly name: string; readonly isTensor: false } | TensorMetadata;

interface TensorMetadata {
  readonly name: string;
  readonly isTensor: true;
  readonly type: string;
  /** Empty where the rank is not known; a symbolic dimension is a string. */
  readonly shape: readonly (number | string)[];
}

export interface OrtSession {
  readonly outputMetadata: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtSessionOptions {
  readonly graphOptimizationLevel: 'disabled' | 'all';
  /** 3: errors only (the runtime warns on stderr about unused initializers and the like). */
  readonly logSeverityLevel: 3;
  /** Threads one run uses inside an operator (absent: the runtime's default, one per physical core). */
  readonly intraOpNumThreads?: number;
  /** Threads running independent operators at once: 1, the operators run in turn on the intra-op threads. */
  readonly interOpNumThreads?: number;
  /** Session config entries (onnxruntime_session_options_config_keys.h), nested by their dotted names. */
  readonly extra?: { readonly session: Readonly<Record<string, string>> };
}

export interface Ort {
  readonly InferenceSession: { create(model: Uint8Array, options: OrtSessionOptions): Promise<OrtSession> };
  readonly Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

export const ORT_PACKAGE = 'onnxruntime-node';
const ORT_VERSION = '1.22.0';

/** Loads the runtime for `file`; `specifier` is for tests. */
export function loadOnnxRuntime(file: string, specifier = ORT_PACKAGE): Ort {
  try {
    return createRequire(import.meta.url)(specifier) as Ort;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    const missing = err instanceof Error && 'code' in err && err.code === 'MODULE_NOT_FOUND' && message.includes(`'${specifier}'`);
    const problem = missing ? 'which is not installed' : `which cannot be loaded (${message})`;
    throw new InternalError(
      `${file}: reading ONNX models needs ${ORT_PACKAGE}, an optional dependency of neurocorr, ${problem}. ` +
        `Fix: in neurocorr's folder run \`ONNXRUNTIME_NODE_INSTALL=skip npm install ${ORT_PACKAGE}@${ORT_VERSION}\` ` +
        `(the variable skips its download of CUDA libraries; the CPU runtime is in the package)`,
      { cause: err },
    );
  }
}
