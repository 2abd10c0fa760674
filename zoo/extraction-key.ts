/**
 * The key of an extracted set: equal keys mean the same activations, so a
 * model extracted once is not extracted again while its bytes, the probe
 * set's bytes and the settings stay the same. The key is the sha256 of the
 * canonical JSON of: the model's files' sha256s (model.json then its weight
 * files, or the .onnx file), the probe set's (every image of a folder, by
 * name, or the IDX or .npy file), the layer selection, size, preprocessing
 * and batch, and the version of this derivation. File hashes come from the
 * results store's cache (content-key.ts), so unchanged files are not read.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../shared/errors.js';
import { canonicalJson } from './canonical-json.js';
import { fileSha256, type FileHashCache } from './content-key.js';
import type { Preprocess } from './zoo-file-models.js';

/**
 * Raise it whenever a change to extract changes the activations it writes
 * for the same model, probes and settings: every model is then extracted again
 * (and its pairs reused when the activations come out the same).
 */
export const EXTRACTION_VERSION = 1;

const IMAGE = /\.(jpe?g|png)$/i;

export interface ExtractionSettings {
  readonly layers: readonly string[] | null;
  readonly size: number | null;
  readonly preprocess: Preprocess | null;
  readonly batch: number | null;
}

/** The files a model is read from, in order: an .onnx file, or a model.json and the weight files its manifest lists. */
export async function modelFiles(model: string): Promise<string[]> {
  let file = model;
  try {
    if ((await stat(model)).isDirectory()) file = join(model, 'model.json');
  } catch (err) {
    throw new InputError('E_INPUT_MISSING', model, 'no such file or directory', 'check the path', { cause: err });
  }
  if (file.toLowerCase().endsWith('.onnx')) return [file];
  const { readModelJson } = await import('../extract/tfjs.js');
  return [file, ...readModelJson(file).weights];
}

/** The sha256s of the probe set's files: a folder's images (by name, the files extract reads), or the file itself. */
export async function probesDigest(probes: string, cache: FileHashCache): Promise<Record<string, string>> {
  if (!(await stat(probes)).isDirectory()) return { '': await fileSha256(probes, cache) };
  const entries = await readdir(probes, { withFileTypes: true });
  const names = entries.filter((e) => !e.isDirectory() && IMAGE.test(e.name)).map((e) => e.name);
  const digest: Record<string, string> = {};
  for (const name of names.sort()) digest[name] = await fileSha256(join(probes, name), cache);
  return digest;
}

export async function extractionKey(model: string, probes: Record<string, string>, settings: ExtractionSettings, cache: FileHashCache): Promise<string> {
  const files: string[] = [];
  for (const file of await modelFiles(model)) files.push(await fileSha256(file, cache));
  const what = { format: 'neurocorr-zoo-extraction', version: EXTRACTION_VERSION, model: files, probes, ...settings };
  return createHash('sha256').update(canonicalJson(what)).digest('hex');
}
