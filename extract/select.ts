/**
 * `layers`: which of a model's layers extract writes. Each entry is an exact
 * name, a glob (`*` any run of characters, `?` one), or a `/regex/` (matched
 * anywhere in the name: anchor it with ^ and $). Without entries, the
 * runner's block outputs. The result is in graph order, each layer once; an
 * entry that matches nothing is an InputError naming it with the closest names.
 */
import { InputError, UsageError } from '../shared/errors.js';
import type { ModelLayerInfo } from './runner.js';

const LIST_FIX = (model: string) => `run neurocorr extract ${model} --list-layers for the names`;

function matcher(entry: string): (name: string) => boolean {
  const regex = /^\/(.+)\/([a-z]*)$/.exec(entry);
  if (regex !== null) {
    let re: RegExp;
    try {
      re = new RegExp(regex[1]!, regex[2]);
    } catch (err) {
      throw new UsageError((o) => `${o('layers')} ${entry}: not a valid regular expression (${(err as Error).message})`);
    }
    return (name) => re.test(name);
  }
  if (/[*?]/.test(entry)) {
    const source = entry
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    const re = new RegExp(`^${source}$`);
    return (name) => re.test(name);
  }
  return (name) => name === entry;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** Up to five names close to `entry`: those containing it (or contained in it), then by edit distance. */
export function closeNames(entry: string, names: readonly string[]): string[] {
  const key = entry.toLowerCase().replace(/^\/|\/[a-z]*$|[*?]/g, '');
  const scored = names.map((name) => {
    const lower = name.toLowerCase();
    const contains = key !== '' && (lower.includes(key) || key.includes(lower));
    return { name, score: contains ? -1 : distance(key, lower) };
  });
  const limit = Math.max(3, Math.floor(key.length / 2));
  return scored
    .filter((s) => s.score <= limit)
    .sort((a, b) => a.score - b.score)
    .slice(0, 5)
    .map((s) => s.name);
}

export function selectLayers(layers: readonly ModelLayerInfo[], entries: readonly string[] | null, model: string): ModelLayerInfo[] {
  if (entries === null) {
    const blocks = layers.filter((l) => l.block);
    if (blocks.length === 0) throw new UsageError((o) => `${model} marks no block outputs; choose layers with ${o('layers')} (${LIST_FIX(model)})`);
    return blocks;
  }
  const chosen = new Set<string>();
  const names = layers.map((l) => l.name);
  for (const entry of entries) {
    const matches = matcher(entry);
    const found = names.filter(matches);
    if (found.length === 0) {
      const close = closeNames(entry, names);
      const hint = close.length > 0 ? `; close names: ${close.join(', ')}` : '';
      throw new InputError(
        'E_INPUT_MISSING',
        model,
        `has no layer ${/[*?]|^\/.*\/[a-z]*$/.test(entry) ? 'matching' : 'named'} "${entry}"${hint}`,
        LIST_FIX(model),
      );
    }
    for (const name of found) chosen.add(name);
  }
  return layers.filter((l) => chosen.has(l.name));
}
