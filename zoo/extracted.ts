/**
 * A zoo's model entries, extracted before its pairs' job: each model on the
 * zoo's probe set into `OUT/extracted/KEY` (extraction-key.ts), where the
 * workers of a cluster read it like any activation set. A set whose key is
 * there already is reused, not extracted again. A model that cannot be
 * extracted (not loadable, wrong input, unknown layer: an input problem,
 * exit 2) is set aside so the other models' pairs still run; zoo.ts reports
 * it once those are stored.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isOptionError, NeurocorrError } from '../shared/errors.js';
import { removeStaleTemps } from '../shared/temp.js';
import { createProgress, type Progress } from '../coordinator/progress.js';
import type { FileHashCache } from './content-key.js';
import { EXTRACTED_DIR } from './contents.js';
import { extractionKey, probesDigest } from './extraction-key.js';
import type { ZooSettings } from './options.js';
import { modelSettings } from './zoo-file-models.js';
import type { ZooEntry } from './zoo-file.js';

const KEY_NAME = /^([0-9a-f]{64})(\.(?:tmp|old|probe)-[0-9]+)?$/;

export interface ModelFailure {
  readonly entry: ZooEntry;
  readonly error: Error;
}

export interface Extraction {
  /** The entries that have an activation set, in zoo order: a model entry's path is its extracted set. */
  readonly entries: readonly ZooEntry[];
  readonly failed: readonly ModelFailure[];
  readonly extracted: number;
  readonly reused: number;
  /** The keys of every extracted set this zoo uses. */
  readonly keys: ReadonlySet<string>;
}

/** An error that is the model's (or its settings') fault: exit 2. */
const inputProblem = (err: unknown): err is Error => (err instanceof NeurocorrError && err.exitCode === 2) || isOptionError(err);

export async function extractModels(s: ZooSettings, cache: FileHashCache): Promise<Extraction> {
  const models = s.entries.filter((e) => e.model !== undefined);
  if (models.length === 0 || s.extract === null) return { entries: s.entries, failed: [], extracted: 0, reused: 0, keys: new Set() };
  const section = s.extract;
  const dir = join(s.out, EXTRACTED_DIR);
  mkdirSync(dir, { recursive: true });
  const probes = await probesDigest(section.probes, cache);
  const { extract } = await import('../extract/extract.js');
  const { extractOwnership } = await import('../extract/output.js');
  const entries: ZooEntry[] = [];
  const failed: ModelFailure[] = [];
  const keys = new Set<string>();
  let [extracted, reused, at] = [0, 0, 0];
  for (const entry of s.entries) {
    const model = entry.model;
    if (model === undefined) {
      entries.push(entry);
      continue;
    }
    at++;
    let bar: Progress | null = null;
    // The bar starts at the first batch's end (when M is known): the rate is measured from the start instead.
    const begun = performance.now();
    try {
      const settings = { ...modelSettings(model, section), batch: section.batch };
      const key = await extractionKey(model.file, probes, settings, cache);
      keys.add(key);
      const set = join(dir, key);
      if (extractOwnership(set) === null && existsSync(join(set, 'layers.json'))) {
        reused++;
        entries.push({ ...entry, path: set });
        continue;
      }
      // Anything else there is a set left half-made (extract writes a temp and renames it whole).
      rmSync(set, { recursive: true, force: true });
      s.log(`zoo: extracting model ${entry.name} (${model.file}), ${at}/${models.length}`);
      await extract({
        model: model.file,
        probes: section.probes,
        out: set,
        ...(settings.layers !== null ? { layers: settings.layers } : {}),
        ...(settings.size !== null ? { size: settings.size } : {}),
        ...(settings.preprocess !== null ? { preprocess: settings.preprocess } : {}),
        ...(settings.batch !== null ? { batch: settings.batch } : {}),
        // The zoo's --threads (one per core by default) runs the model too: outputs are the same bytes whatever it is.
        ...(s.threads !== undefined ? { threads: s.threads } : {}),
        progress: (done, total) => {
          bar ??= createProgress({
            total,
            pairsPerUnit: 1,
            label: 'probes',
            enabled: s.progress,
            intervalMs: s.progressInterval,
            detail: () => `extracting ${entry.name} (model ${at}/${models.length})`,
            rate: () => `${(done / Math.max(1e-3, (performance.now() - begun) / 1000)).toFixed(1)} probes/s`,
          });
          bar.update(done);
        },
        log: s.log,
      });
      extracted++;
      entries.push({ ...entry, path: set });
    } catch (err) {
      if (!inputProblem(err)) throw err;
      failed.push({ entry, error: err });
      s.log(`zoo: model ${entry.name} (${model.file}) is left out: ${err.message}`);
    } finally {
      (bar as Progress | null)?.finish();
    }
  }
  return { entries, failed, extracted, reused, keys };
}

/** Removes the extracted sets under `out` that `keys` does not name, and the temps of dead runs; nothing else. */
export function dropUnusedSets(out: string, keys: ReadonlySet<string>, log: (line: string) => void): void {
  const dir = join(out, EXTRACTED_DIR);
  if (!existsSync(dir)) return;
  let dropped = 0;
  for (const name of readdirSync(dir)) {
    const match = KEY_NAME.exec(name);
    if (match === null) continue;
    if (match[2] !== undefined) removeStaleTemps(join(dir, match[1]!));
    else if (!keys.has(name)) {
      rmSync(join(dir, name), { recursive: true, force: true });
      dropped++;
    }
  }
  if (dropped > 0) log(`zoo: removed ${dropped} extracted set${dropped === 1 ? '' : 's'} no model of the zoo uses any more`);
}
