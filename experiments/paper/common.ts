/** What every step of the paper reproduction shares: its cache, its log, content keys. */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../study/common.js';

export { buildOnce, fmt, ROOT } from '../../study/common.js';

/** Everything trained or computed, kept between runs (`NEUROCORR_PAPER_CACHE` moves it). */
export const CACHE = process.env['NEUROCORR_PAPER_CACHE'] || join(ROOT, 'node_modules', '.cache', 'neurocorr-paper');

export class PaperError extends Error {}

export const log = (line: string): void => void process.stderr.write(`paper: ${line}\n`);

/** A short content key of a JSON-able description of a step's inputs. */
export const keyOf = (inputs: unknown): string => createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);

/** A file of the cache folder `dir` (created if missing). */
export function cacheFile(dir: string, name: string): string {
  mkdirSync(join(CACHE, dir), { recursive: true });
  return join(CACHE, dir, name);
}

/** Writes `file` whole or not at all: `write` fills a temporary name, then it is renamed into place. */
export function atomicWrite(file: string, write: (tmp: string) => void): void {
  const tmp = `${file}.tmp-${process.pid}`;
  write(tmp);
  renameSync(tmp, file);
}
