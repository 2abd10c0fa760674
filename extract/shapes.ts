/**
 * Bounds on the shapes a model declares, checked before anything is sized
 * from them: each dimension a whole number, and one probe's input or
 * activation at most MAX_PROBE_VALUES values. A model file may declare any
 * shape; past these bounds a batch could not be allocated (a RangeError) or
 * would take the machine's memory.
 */
import { InputError } from '../shared/errors.js';
import type { ModelInputInfo, ModelLayerInfo } from './runner.js';

/** The most values of one probe's input or of one layer's activation: 1 GiB of float32. */
export const MAX_PROBE_VALUES = 2 ** 28;

/** The most values of one batch array (the input, or a layer's activations): the batch is lowered to fit. */
export const MAX_BATCH_VALUES = 2 ** 28;

const FIX = `export the model with a smaller input size (extract takes at most ${MAX_PROBE_VALUES} values, 1 GiB of float32, per probe in any layer)`;

const shown = (shape: readonly (number | null)[]): string => `[${shape.map((d) => d ?? '?').join(', ')}]`;

/** Values one probe of `shape` holds, open dimensions left out. */
export const probeValues = (shape: readonly (number | null)[]): number => shape.reduce<number>((p, d) => p * (d ?? 1), 1);

/** Refuses a shape (`what`: `layer "conv1"`, `its input "x"`) with a dimension that is not a size, or past MAX_PROBE_VALUES per probe. */
export function checkShape(file: string, what: string, shape: readonly (number | null)[]): void {
  const bad = shape.find((d) => d !== null && !(Number.isSafeInteger(d) && d >= 0));
  if (bad !== undefined) throw new InputError('E_INPUT_SHAPE', file, `${what} has shape ${shown(shape)}: ${bad} is not a size`, FIX);
  const values = probeValues(shape);
  if (values > MAX_PROBE_VALUES) {
    throw new InputError(
      'E_INPUT_SHAPE',
      file,
      `${what} has shape ${shown(shape)} per probe: ${values} values, over extract's limit of ${MAX_PROBE_VALUES}`,
      FIX,
    );
  }
}

/** Refuses a model whose input or any layer has a shape checkShape refuses. */
export function checkModelShapes(file: string, input: ModelInputInfo, layers: readonly ModelLayerInfo[]): void {
  checkShape(file, `its input "${input.name}"`, input.shape);
  for (const layer of layers) checkShape(file, `layer "${layer.name}"`, layer.shape);
}

/** Probes run at once: `batch`, lowered so that no batch array (the input's or a layer's) holds more than MAX_BATCH_VALUES values. */
export function batchSize(batch: number, shapes: readonly (readonly (number | null)[])[], log: (line: string) => void): number {
  const widest = Math.max(1, ...shapes.map(probeValues));
  const fits = Math.max(1, Math.floor(MAX_BATCH_VALUES / widest));
  if (fits >= batch) return batch;
  log(`extract: ${widest} values a probe in the widest layer: running ${fits} probes at a time instead of ${batch}`);
  return fits;
}
