/**
 * What a stored pair is keyed by: both sets' content keys, the options that
 * change a score, and the version of the engine's scores. A pair is reused
 * only when all four are equal.
 */
import { InternalError } from '../shared/errors.js';
import { canonicalJson } from './canonical-json.js';

/**
 * The version of the scores the engine computes. Raise it whenever a change
 * to neurocorr changes any number in a pair's report for the same inputs and
 * options (the reduction, the null, the chance level): stored pairs of older
 * versions then miss and are computed again.
 */
export const SCORE_VERSION = 1;

export interface PairKey {
  /** Content key of F (the rows). */
  readonly f: string;
  /** Content key of G (the columns). */
  readonly g: string;
  /** Canonical JSON of the score-affecting options (`optionsKey`). */
  readonly options: string;
  /** SCORE_VERSION when the pair was computed. */
  readonly version: number;
}

/** The options key: the canonical JSON of the options that change a score (an object). */
export function optionsKey(options: Readonly<Record<string, unknown>>): string {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new InternalError('optionsKey: options must be an object');
  return canonicalJson(options);
}

export function pairKey(f: string, g: string, options: Readonly<Record<string, unknown>>, version: number = SCORE_VERSION): PairKey {
  return { f, g, options: optionsKey(options), version };
}

const CONTENT_KEY = /^[0-9a-f]{64}$/;

/** What is wrong with `key` as a stored pair's key, or null. */
export function pairKeyProblem(key: PairKey): string | null {
  if (!CONTENT_KEY.test(key.f)) return `f must be a content key (64 lowercase hex digits), got ${JSON.stringify(key.f)}`;
  if (!CONTENT_KEY.test(key.g)) return `g must be a content key (64 lowercase hex digits), got ${JSON.stringify(key.g)}`;
  if (!Number.isSafeInteger(key.version) || key.version < 1) return `the score version must be an integer >= 1, got ${JSON.stringify(key.version)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(key.options);
  } catch {
    return 'options must be canonical JSON of an object (optionsKey), and is not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || canonicalJson(parsed) !== key.options) {
    return 'options must be canonical JSON of an object (optionsKey): keys sorted, no spaces';
  }
  return null;
}
