/**
 * How a probe set feeds a model: images and IDX images at the model's input
 * size (or `size` where the model leaves it open, or their own common size),
 * preprocessed and laid out for the input; a .npy of inputs as it is, when
 * its per-probe shape fits the input.
 */
import { InputError, UsageError } from '../shared/errors.js';
import { formatShape } from '../shared/formats/index.js';
import { checkPreprocess, imageGeometry, inputShape, PREPROCESS, type Preprocess, type Sized } from './pixels.js';
import type { Feed, ProbeKind, ProbeSet } from './probes.js';
import type { ModelInputInfo } from './runner.js';

export interface PlannedFeed {
  readonly feed: Feed;
  /** One probe's input shape, every dimension known. */
  readonly shape: readonly number[];
  /** Images: [H, W] they are resized to; null for a .npy. */
  readonly size: readonly [number, number] | null;
  readonly preprocess: Preprocess | null;
}

const shown = (shape: readonly (number | null)[]): string => `[${shape.map((d) => d ?? '?').join(', ')}]`;

/** Refuses settings that do not fit the kind of probes, before any is read. */
export function checkFeedOptions(kind: ProbeKind, size: number | null, preprocess: Preprocess | null): void {
  if (kind === 'npy') {
    if (preprocess !== null && preprocess !== 'none') {
      throw new UsageError((o) => `${o('preprocess')} ${preprocess} applies to images; a .npy of probes holds the model's inputs, fed as they are`);
    }
    if (size !== null) throw new UsageError((o) => `${o('size')} resizes images; a .npy of probes holds the model's inputs, fed as they are`);
  } else if (preprocess === null) {
    throw new UsageError(
      (o) =>
        `image probes need ${o('preprocess')}: one of ${PREPROCESS.join(', ')} (caffe: Keras ResNet50/VGG; torch: torchvision models; tf: Keras MobileNet/Inception; unit: /255; none: 0-255)`,
    );
  }
}

export function planFeed(probes: ProbeSet, input: ModelInputInfo, model: string, size: number | null, preprocess: Preprocess | null): PlannedFeed {
  checkFeedOptions(probes.kind, size, preprocess);
  if (probes.kind === 'npy') {
    const shape = probes.shape!;
    const fits = shape.length === input.shape.length && input.shape.every((d, i) => d === null || d === shape[i]);
    if (!fits) {
      throw new InputError(
        'E_INPUT_SHAPE',
        probes.path,
        `one probe has shape ${formatShape(shape)} but ${model} takes ${shown(input.shape)}`,
        'save the inputs as [M, ...the model input], already preprocessed and in its layout',
      );
    }
    return { feed: { kind: 'array', size: shape.reduce((a, b) => a * b, 1) }, shape, size: null, preprocess: null };
  }
  const g = imageGeometry(input, model);
  checkPreprocess(preprocess!, g);
  if (size !== null && ((g.height !== null && g.height !== size) || (g.width !== null && g.width !== size))) {
    throw new UsageError((o) => `${model} takes ${g.height}x${g.width} images; ${o('size')} ${size} can only set a size the model leaves open`);
  }
  let height = g.height ?? size;
  let width = g.width ?? size;
  if (height === null || width === null) {
    if (probes.mixed !== null) {
      throw new InputError(
        'E_INPUT_SHAPE',
        probes.mixed.file,
        `${probes.mixed.problem}, and ${model} leaves its input size open`,
        (o) => `resize every probe to one size with ${o('size')} N`,
      );
    }
    [height, width] = [height ?? probes.shape![0]!, width ?? probes.shape![1]!];
  }
  if (g.layout === 'flat' && height !== width)
    throw new InputError('E_INPUT_SHAPE', model, `its flat input needs square images, got ${height}x${width}`, 'resize the probes');
  const geometry: Sized = { ...g, height, width };
  return { feed: { kind: 'pixels', geometry, preprocess: preprocess! }, shape: inputShape(geometry), size: [height, width], preprocess };
}
