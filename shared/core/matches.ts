/** `--matches FILE`: every neuron's best partner, as CSV, for audit. */
import { originalId, type Model } from './model.js';
import type { DirectionState, MatchMode, NeuronScores } from './reduce.js';

export const MATCHES_HEADER = 'model,neuron,layer,partner,partner_layer,abs_rho,S\n';

export interface MatchesSide {
  readonly label: 'F' | 'G';
  readonly self: Model;
  readonly other: Model;
  readonly state: DirectionState;
  readonly scores: NeuronScores;
}

const csvField = (text: string): string => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);

/** CSV rows in chunks of about 64 KiB, F neurons first. */
export function* matchesCsv(sides: readonly MatchesSide[], mode: MatchMode): Generator<string> {
  yield MATCHES_HEADER;
  for (const { label, self, other, state, scores } of sides) {
    const partners = mode === 'paper' ? state.arg : state.penArg;
    const rhos = mode === 'paper' ? state.best : state.penRho;
    const partnerLayers = mode === 'paper' ? scores.paperLayer : scores.penalizedLayer;
    const values = scores[mode];
    let chunk = '';
    let layer = 0;
    for (let i = 0; i < self.n; i++) {
      while (i >= self.layers[layer]!.start + self.layers[layer]!.count) layer++;
      const partner = partners[i]!;
      chunk += `${label},${originalId(self, i)},${csvField(self.layers[layer]!.name)},${originalId(other, partner)},${csvField(other.layers[partnerLayers[i]!]!.name)},${rhos[i]!},${values[i]!}\n`;
      if (chunk.length > 65536) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk.length > 0) yield chunk;
  }
}
