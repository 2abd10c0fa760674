import type { ScoreOptions } from '../../dist/coordinator/score.js';

/** Defaults for calling the score pipeline in-process: every option off, quiet. */
export const baseOptions: ScoreOptions = {
  match: 'paper',
  constant: 'include',
  conv: 'units',
  layers: null,
  layersF: null,
  layersG: null,
  sample: null,
  probes: null,
  kernel: { choice: 'reference' },
  out: null,
  matches: null,
  progress: false,
  log: () => undefined,
};
