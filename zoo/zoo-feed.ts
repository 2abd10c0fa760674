/** A zoo file's model entries checked against its probe set before anything runs: each needs the feed settings its probes take. */
import { InputError } from '../shared/errors.js';
import { PREPROCESS } from '../shared/options/index.js';
import { probeKind } from '../extract/probes.js';
import { modelSettings, type ZooExtract } from './zoo-file-models.js';
import type { ZooEntry } from './zoo-file.js';

export function checkModelFeeds(file: string, entries: readonly ZooEntry[], extract: ZooExtract): void {
  const models = entries.filter((e) => e.model !== undefined);
  if (models.length === 0) return;
  let kind: ReturnType<typeof probeKind>;
  try {
    kind = probeKind(extract.probes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new InputError(
      'E_INPUT_MISSING',
      file,
      `"extract".probes cannot be read (${why})`,
      "give the zoo's probe set: a folder of JPEG/PNG images, an IDX file or a .npy of model inputs, relative to the zoo file",
      { cause: err },
    );
  }
  for (const entry of models) {
    const { size, preprocess } = modelSettings(entry.model!, extract);
    const at = `model ${JSON.stringify(entry.name)}`;
    if (kind === 'npy') {
      if ((preprocess !== null && preprocess !== 'none') || size !== null) {
        const what = size !== null ? `"size" ${size}` : `"preprocess" ${JSON.stringify(preprocess)}`;
        throw new InputError(
          'E_INPUT_FORMAT',
          file,
          `${at} has ${what}, but the probes (${extract.probes}) are a .npy of model inputs, fed as they are`,
          'leave out "size" and "preprocess" for .npy probes',
        );
      }
    } else if (preprocess === null) {
      throw new InputError(
        'E_INPUT_FORMAT',
        file,
        `${at} has no "preprocess", and its probes (${extract.probes}) are images`,
        `give "preprocess" in "extract" (or on the entry): one of ${PREPROCESS.join(', ')} (caffe: Keras ResNet50/VGG; torch: torchvision models; tf: Keras MobileNet/Inception; unit: /255; none: 0-255)`,
      );
    }
  }
}
