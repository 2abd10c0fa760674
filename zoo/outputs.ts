/**
 * A zoo's output folder DIR: matrix.csv, matrix.json, matrix.arrow,
 * heatmap.svg, heatmap.png, report.html and the marker zoo.json.
 *
 * - Checked before any compute (checkZooOutputs) and again before writing:
 *   DIR is never an input, inside one or holding one (symlinks followed); an
 *   existing DIR is refused without `force`, and with it is written into only
 *   if neurocorr zoo wrote it (its zoo.json says so, and it holds nothing but
 *   the files zoo.json lists); the folder that holds DIR must exist.
 * - Written whole or not at all. A new DIR is written as `DIR.tmp-PID` and
 *   renamed into place. In an existing DIR each file is written to
 *   `FILE.tmp-PID` and all are renamed at the end, zoo.json last; a failed
 *   rename puts back the files already replaced. On any failure the temps
 *   are removed, and a signal's handler removes them too (shared/temp.ts).
 * - Nothing else is ever deleted: only neurocorr's own files are replaced,
 *   and stale temps of dead runs (`FILE.tmp-PID`, PID gone) are removed.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../shared/errors.js';
import { checkOutputSet, lexists, readJsonObject, writeFilesSteps } from '../shared/formats/index.js';
import { runStepsAsync } from '../shared/steps.js';
import { dropTemp, removeStaleTemps, tempPath } from '../shared/temp.js';
import { EXTRACTED_DIR, STORE_FILES, ZOO_FILES, ZOO_FORMAT, ZOO_MARKER, zooFiles, type ZooFile } from './contents.js';
import type { ZooResult } from './types.js';

export { EXTRACTED_DIR, STORE_FILES, STORE_NAME, ZOO_FILES, ZOO_FORMAT, ZOO_MARKER } from './contents.js';

const ZOO_SET = 'a folder written by neurocorr zoo';

/** Why `dir` is not a folder neurocorr zoo wrote, or null; removes the stale temps of its own files first. */
export function zooOwnership(dir: string): string | null {
  const marker = readJsonObject(join(dir, ZOO_MARKER));
  const files = marker?.['files'];
  if (marker?.['format'] !== ZOO_FORMAT || !Array.isArray(files)) return `it has no ${ZOO_MARKER} with "format": "${ZOO_FORMAT}"`;
  const own = new Set<string>([
    ...ZOO_FILES,
    ...STORE_FILES,
    ...files.filter((f): f is string => typeof f === 'string' && !f.includes('/') && !f.includes('\\')),
  ]);
  for (const name of own) removeStaleTemps(join(dir, name));
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    // The folder of extracted sets is the zoo's own, whether or not a run has listed it yet.
    if (e.name === EXTRACTED_DIR && e.isDirectory()) continue;
    if (!own.has(e.name) || !e.isFile()) return `it holds ${e.name}, which neurocorr did not write`;
  }
  return null;
}

/**
 * Fails (UsageError, exit 2) when the zoo's outputs could not or must not go
 * to `dir`: call it before any compute. `inputs` are the models' activation
 * sets; `force` allows writing into a folder neurocorr zoo wrote.
 */
export function checkZooOutputs(dir: string, inputs: readonly string[], force: boolean): void {
  const parent = dirname(resolve(dir));
  let parentIsDir = false;
  try {
    parentIsDir = statSync(parent).isDirectory();
  } catch {
    // missing: said below
  }
  if (!parentIsDir) throw new UsageError(`${dir}: folder ${parent} does not exist; create it first or choose another output directory`);
  checkOutputSet(dir, { inputs, force, what: ZOO_SET, owned: zooOwnership });
}

export interface ZooOutputOptions {
  /** Write into an existing DIR if (and only if) neurocorr zoo wrote it. */
  readonly force: boolean;
  /** The zoo's inputs (default: the models' paths, or their model files). */
  readonly inputs?: readonly string[];
}

/** Writes `files` into `dir` (checked already): a new folder through a temp folder renamed into place, an existing one file by file, all renamed at the end. Returns the paths written. */
export async function writeZooFiles(dir: string, files: readonly ZooFile[]): Promise<string[]> {
  const names = files.map((f) => f.name);
  if (lexists(dir)) {
    await runStepsAsync(writeFilesSteps(files.map((f) => ({ path: join(dir, f.name), chunks: f.chunks }))));
    return names.map((n) => join(dir, n));
  }
  const tmp = tempPath(dir);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    await runStepsAsync(writeFilesSteps(files.map((f) => ({ path: join(tmp, f.name), chunks: f.chunks }))));
    // Something may have appeared at DIR meanwhile: never rename onto it.
    if (lexists(dir)) throw new UsageError(`${dir} appeared while the zoo's outputs were written; nothing was written to it: run again`);
    renameSync(tmp, dir);
  } finally {
    dropTemp(tmp);
  }
  return names.map((n) => join(dir, n));
}

/**
 * Writes every output of `result` into `dir`, whole or not at all, and
 * returns the paths written (zoo.json last). Checks `dir` again first (see
 * checkZooOutputs), since what is there may have changed during the compute.
 */
export async function writeZooOutputs(result: ZooResult, dir: string, options: ZooOutputOptions): Promise<string[]> {
  const files = await zooFiles(result);
  // A model entry's extracted set is in DIR: its input is the model file.
  checkZooOutputs(dir, options.inputs ?? result.models.map((m) => m.model ?? m.path), options.force);
  return writeZooFiles(dir, files);
}
