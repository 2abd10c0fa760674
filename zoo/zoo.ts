/**
 * `zoo`: every ordered pair of a set of models, as one job, incrementally.
 * Pairs already in the results store (keyed by both models' contents, the
 * options that change a score, and the engine's score version) are reused;
 * the rest run as one job (the job driver, coordinator/job.ts, on one pool
 * or in one JetStream job), each stored as soon as its report is known. The outputs are drawn from all K x K reports.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '../shared/core/index.js';
import { InputError, InternalError, NeurocorrError, UsageError } from '../shared/errors.js';
import { lexists, planModels, type PlannedSet } from '../shared/formats/index.js';
import { nativeLoops } from '../worker/native/assist.js';
import { zooMarker } from './contents.js';
import { contentKey } from './content-key.js';
import { refuseOnCluster, runJob } from '../coordinator/job.js';
import { zooSettings, type ZooOptions, type ZooSettings } from './options.js';
import { checkZooOutputs, writeZooOutputs, ZOO_MARKER, zooOwnership } from './outputs.js';
import { dropUnusedSets, extractModels, type ModelFailure } from './extracted.js';
import { fitsModels } from './report-check.js';
import { pairKey, ZooStore } from './store.js';
import type { ZooModel, ZooPair, ZooResult } from './types.js';
import type { ZooEntry } from './zoo-file.js';

export interface ZooRunResult {
  readonly result: ZooResult;
  /** The files written in the zoo's folder. */
  readonly files: readonly string[];
  /** What `neurocorr zoo` prints. */
  readonly summary: string;
}

/** The options that change a score, as the store keys them: pooling as resolved, the null as requested. */
function optionsKey(s: ZooSettings, planned: PlannedSet): Record<string, unknown> {
  const { conv, layout, layers, probes } = s.pair;
  return {
    conv,
    layout: layout ?? null,
    spatial: planned.spatial === null ? null : { height: planned.spatial.height, width: planned.spatial.width },
    layers,
    probes,
    constant: s.constant,
    null: s.null,
  };
}

/** Every model declares the same probe fingerprint, or none does (the same M is checked when planning). */
function checkFingerprints(entries: readonly ZooEntry[], planned: PlannedSet): void {
  const declared = planned.models.map((m, k) => ({ ...entries[k]!, fingerprint: m.skeleton().fingerprint }));
  const some = declared.find((d) => d.fingerprint !== null);
  const none = declared.find((d) => d.fingerprint === null);
  if (some !== undefined && none !== undefined) {
    throw new InputError(
      'E_INPUT_MISMATCH',
      none.path,
      `(model ${none.name}) declares no probe fingerprint but model ${some.name} (${some.path}) declares ${some.fingerprint}`,
      'give every model of the zoo the same probe fingerprint (layers.json "probes", safetensors "probe_fingerprint", or the shard manifest), or none',
    );
  }
}

/** What the zoo reads: activation sets, model files and the probe set (its folder must be none of them, nor hold one). */
function zooInputs(s: ZooSettings): string[] {
  return [...s.entries.map((e) => e.model?.file ?? e.path), ...(s.extract !== null && s.entries.some((e) => e.model) ? [s.extract.probes] : [])];
}

/** The models that could not be extracted, as one error naming the zoo file, each entry and its model file. */
function modelsFailed(s: ZooSettings, failed: readonly ModelFailure[], stored: boolean): InputError {
  const list = failed.map((f) => `model ${JSON.stringify(f.entry.name)} (${f.entry.model?.file ?? f.entry.path}): ${f.error.message}`).join('; ');
  const first = failed[0]!.error;
  const fix = stored
    ? `fix or remove ${failed.length === 1 ? 'that entry' : 'those entries'}; the other models' pairs are stored and the outputs in ${s.out} hold them`
    : `fix or remove ${failed.length === 1 ? 'that entry' : 'those entries'} (a zoo needs 2 models it can score)`;
  return new InputError(
    first instanceof NeurocorrError ? first.code : 'E_INPUT_FORMAT',
    s.source,
    `${failed.length} model${failed.length === 1 ? '' : 's'} could not be extracted: ${list}`,
    fix,
    { cause: first },
  );
}

/**
 * The zoo's folder, checked before any compute and claimed: created (with
 * its marker) when missing; an existing one must be a zoo's or empty.
 */
function claimZooDir(dir: string, inputs: readonly string[]): void {
  if (lexists(dir)) {
    const empty = (() => {
      try {
        return readdirSync(dir).length === 0;
      } catch {
        return false;
      }
    })();
    if (!empty) {
      const why = zooOwnership(dir);
      if (why !== null) throw new UsageError(`${dir} is not a zoo's folder (${why}); choose another --out, or empty it`);
    }
  }
  checkZooOutputs(dir, inputs, true);
  if (!lexists(dir)) mkdirSync(dir);
  if (!lexists(join(dir, ZOO_MARKER))) writeFileSync(join(dir, ZOO_MARKER), zooMarker(null));
}

export async function zoo(options: ZooOptions): Promise<ZooRunResult> {
  const s = zooSettings(options);
  // Before the folder is claimed, and also when every pair is in the store and no job runs.
  refuseOnCluster(s);
  const started = performance.now();
  const loops = nativeLoops(s.standardize);
  const plan = (paths: readonly string[]) => planModels(paths, { ...s.pair, ...(loops ? { loops } : {}) });
  // A zoo of activation sets is checked before its folder is claimed; a model has no set until it is extracted.
  const early = s.entries.some((e) => e.model !== undefined) ? null : plan(s.entries.map((e) => e.path));
  if (early !== null) checkFingerprints(s.entries, early);
  const created = !lexists(s.out);
  claimZooDir(s.out, zooInputs(s));
  const state = { stored: 0, wrote: false };
  try {
    return await runClaimed(s, early, plan, started, state);
  } catch (err) {
    // A run refused before it stored any pair or wrote outputs leaves no folder it made (its marker, a new store, extracted sets).
    if (created && state.stored === 0 && !state.wrote) rmSync(s.out, { recursive: true, force: true });
    throw err;
  }
}

interface RunState {
  stored: number;
  wrote: boolean;
}

async function runClaimed(
  s: ZooSettings,
  early: PlannedSet | null,
  plan: (paths: readonly string[]) => PlannedSet,
  started: number,
  state: RunState,
): Promise<ZooRunResult> {
  const store = await ZooStore.open(s.store, { writer: true, wait: s.storeWaitMs });
  try {
    // Under the store's lock: one run at a time writes the zoo's folder, its extracted sets included.
    const extraction = await extractModels(s, store.fileHashes);
    const { entries, failed } = extraction;
    if (entries.length < 2) throw modelsFailed(s, failed, false);
    const planned = early ?? plan(entries.map((e) => e.path));
    if (early === null) checkFingerprints(entries, planned);
    const paths = entries.map((e) => e.path);
    const keys: string[] = [];
    for (const path of paths) keys.push(await contentKey(path, store.fileHashes));
    const opts = optionsKey(s, planned);
    const skeletons = planned.models.map((m) => m.skeleton());
    const models: ZooModel[] = entries.map((e, k) => {
      const model = skeletons[k]!;
      const file = e.model !== undefined ? { model: e.model.file } : {};
      return { name: e.name, path: e.path, ...file, tags: e.tags, key: keys[k]!, probes: model.probes, fingerprint: model.fingerprint, neurons: model.n };
    });
    const K = models.length;
    const keyOf = (i: number, j: number) => pairKey(keys[i]!, keys[j]!, opts);
    const reports: (Report | null)[] = [];
    const missing: { readonly i: number; readonly j: number }[] = [];
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        let report = store.get(keyOf(i, j));
        if (report !== null && !fitsModels(report, skeletons[i]!, skeletons[j]!)) {
          s.log(
            `zoo: the stored report of ${models[i]!.name} x ${models[j]!.name} does not describe these models (an edited or relabelled record): computing it again`,
          );
          report = null;
        }
        reports.push(report);
        if (report === null) missing.push({ i, j });
      }
    }
    s.log(`zoo: ${K} models, ${K * K} ordered pairs: ${missing.length} to compute, ${K * K - missing.length} in the store`);
    if (missing.length > 0) {
      // Only the models the missing pairs need are read.
      const needed = [...new Set(missing.flatMap(({ i, j }) => [i, j]))].sort((a, b) => a - b);
      const local = new Map(needed.map((k, at) => [k, at]));
      const stored = (index: number, report: Report) => {
        const { i, j } = missing[index]!;
        store.put(keyOf(i, j), report);
        state.stored++;
        reports[i * K + j] = report;
      };
      await runJob(
        s,
        {
          paths: needed.map((k) => paths[k]!),
          labels: needed.map((k) => entries[k]!.name),
          planned: { models: needed.map((k) => planned.models[k]!), partial: planned.partial, spatial: planned.spatial },
          pairs: missing.map(({ i, j }) => ({ f: local.get(i)!, g: local.get(j)! })),
        },
        {
          onPair: (index, scored) => stored(index, scored.report),
          restored: (done, name) => {
            s.log(`job ${name} is already done; its stored results are used`);
            done.forEach((report, index) => stored(index, report));
          },
        },
      );
    }
    const fresh = new Set(missing.map(({ i, j }) => i * K + j));
    const pairs: ZooPair[] = reports.map((report, at) => {
      const [i, j] = [Math.floor(at / K), at % K];
      if (report === null) throw new InternalError(`zoo: pair ${models[i]!.name} x ${models[j]!.name} has no report`);
      // A stored report names the paths it was computed from; the zoo's names and paths are this run's.
      return { f: models[i]!.name, g: models[j]!.name, report: { ...report, match: s.match, models: { F: paths[i]!, G: paths[j]! } }, reused: !fresh.has(at) };
    });
    const withModels = s.entries.some((e) => e.model !== undefined);
    const result: ZooResult = {
      version: 1,
      models,
      pairs,
      match: s.match,
      options: opts,
      computed: missing.length,
      reused: K * K - missing.length,
      seconds: (performance.now() - started) / 1000,
      ...(withModels ? { extraction: { extracted: extraction.extracted, reused: extraction.reused, failed: failed.map((f) => f.entry.name) } } : {}),
    };
    const files = await writeZooOutputs(result, s.out, { force: true, inputs: zooInputs(s) });
    state.wrote = true;
    const summary = zooSummary(result, s.out);
    if (failed.length > 0) {
      s.log(summary);
      throw modelsFailed(s, failed, true);
    }
    dropUnusedSets(s.out, extraction.keys, s.log);
    return { result, files, summary };
  } finally {
    store.close();
  }
}

/** With model entries: `extracted 1 model, reused 4; ` (and the models left out). */
function extracted(result: ZooResult): string {
  const e = result.extraction;
  if (e === undefined) return '';
  const out = e.failed.length > 0 ? `, left out ${e.failed.join(', ')}` : '';
  return `extracted ${e.extracted} model${e.extracted === 1 ? '' : 's'}, reused ${e.reused}${out}; `;
}

/** The summary: the counts, then the corrected (or raw) symmetric score of every pair as a small table. */
export function zooSummary(result: ZooResult, out: string): string {
  const K = result.models.length;
  const names = result.models.map((m) => m.name);
  const width = Math.min(14, Math.max(6, ...names.map((n) => n.length)));
  const cell = (text: string) => text.slice(0, width).padStart(width);
  const value = (p: ZooPair) => {
    const n = p.report.null;
    return n === null ? p.report.scores[result.match].forward : n.scores[result.match].forward.corrected;
  };
  const what = result.pairs.every((p) => p.report.null !== null) ? 'corrected' : 'raw';
  const lines = [
    `neurocorr zoo: ${K} models, ${K * K} ordered pairs: ${extracted(result)}computed ${result.computed} pairs, reused ${result.reused} (${result.seconds.toFixed(2)} s)`,
    `  ${what} score (${result.match}, forward: row F, column G):`,
    `  ${cell('')} ${names.map(cell).join(' ')}`,
    ...names.map(
      (name, i) =>
        `  ${cell(name)} ${result.pairs
          .slice(i * K, (i + 1) * K)
          .map((p) => cell(value(p).toFixed(3)))
          .join(' ')}`,
    ),
    `  outputs in ${out}: report.html, heatmap.svg, heatmap.png, matrix.csv, matrix.json, matrix.arrow`,
  ];
  return lines.join('\n');
}
