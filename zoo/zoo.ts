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
import { InputError, InternalError, UsageError } from '../shared/errors.js';
import { lexists, planModels, type PlannedSet } from '../shared/formats/index.js';
import { nativeLoops } from '../worker/native/assist.js';
import { zooMarker } from './contents.js';
import { contentKey } from './content-key.js';
import { refuseOnCluster, runJob } from '../coordinator/job.js';
import { zooSettings, type ZooOptions, type ZooSettings } from './options.js';
import { checkZooOutputs, writeZooOutputs, ZOO_MARKER, zooOwnership } from './outputs.js';
import { fitsModels } from './report-check.js';
import { pairKey, ZooStore } from './store.js';
import type { ZooModel, ZooPair, ZooResult } from './types.js';

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
function checkFingerprints(s: ZooSettings, planned: PlannedSet): void {
  const declared = planned.models.map((m, k) => ({ ...s.entries[k]!, fingerprint: m.skeleton().fingerprint }));
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
  const paths = s.entries.map((e) => e.path);
  const loops = nativeLoops(s.standardize);
  const planned = planModels(paths, { ...s.pair, ...(loops ? { loops } : {}) });
  checkFingerprints(s, planned);
  const created = !lexists(s.out);
  claimZooDir(s.out, paths);
  let stored = 0;
  try {
    return await runClaimed(s, planned, started, () => stored++);
  } catch (err) {
    // A run refused before it stored any pair leaves no folder it made (its marker, a new store).
    if (created && stored === 0) rmSync(s.out, { recursive: true, force: true });
    throw err;
  }
}

async function runClaimed(s: ZooSettings, planned: PlannedSet, started: number, onStored: () => void): Promise<ZooRunResult> {
  const paths = s.entries.map((e) => e.path);
  const store = await ZooStore.open(s.store, { writer: true, wait: s.storeWaitMs });
  try {
    const keys: string[] = [];
    for (const path of paths) keys.push(await contentKey(path, store.fileHashes));
    const opts = optionsKey(s, planned);
    const skeletons = planned.models.map((m) => m.skeleton());
    const models: ZooModel[] = s.entries.map((e, k) => {
      const model = skeletons[k]!;
      return { name: e.name, path: e.path, tags: e.tags, key: keys[k]!, probes: model.probes, fingerprint: model.fingerprint, neurons: model.n };
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
        onStored();
        reports[i * K + j] = report;
      };
      await runJob(
        s,
        {
          paths: needed.map((k) => paths[k]!),
          labels: needed.map((k) => s.entries[k]!.name),
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
    const result: ZooResult = {
      version: 1,
      models,
      pairs,
      match: s.match,
      options: opts,
      computed: missing.length,
      reused: K * K - missing.length,
      seconds: (performance.now() - started) / 1000,
    };
    const files = await writeZooOutputs(result, s.out, { force: true });
    return { result, files, summary: zooSummary(result, s.out) };
  } finally {
    store.close();
  }
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
    `neurocorr zoo: ${K} models, ${K * K} ordered pairs: computed ${result.computed} pairs, reused ${result.reused} (${result.seconds.toFixed(2)} s)`,
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
