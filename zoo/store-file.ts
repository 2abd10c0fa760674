/**
 * The results store's portable form, JSON Lines: a header line, then one
 * line per pair with its key fields, when it was computed and its report.
 *
 *   {"format":"neurocorr-zoo-export","version":1,"records":2,"exported":"2026-11-30T12:00:00.000Z"}
 *   {"f":"<64 hex>","g":"<64 hex>","options":{...},"scoreVersion":1,"created":1796040000000,"report":{...}}
 *
 * Reading checks every line (and that the count matches the header's, so a
 * truncated copy is refused) and names the file and line of the first
 * problem.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Report } from '../shared/core/index.js';
import { InputError } from '../shared/errors.js';
import { jsonSyntax, requireRegularFile } from '../shared/formats/index.js';
import { canonicalJson } from './canonical-json.js';
import { pairKeyProblem, type PairKey } from './pair-key.js';
import { reportProblem } from './report-check.js';

export const EXPORT_FORMAT = 'neurocorr-zoo-export';
export const EXPORT_VERSION = 1;

/** A stored pair as its row holds it: the report as JSON text. */
export interface PairRow {
  readonly key: PairKey;
  readonly report: string;
  readonly created: number;
}

const FIX = `import a file that a results store's export wrote (JSON Lines: a header line with "format": "${EXPORT_FORMAT}", then one pair per line); export the source store again if this copy is damaged`;

/** The export's lines, each ending in a newline. Rows' texts are JSON already, so they are spliced in as they are. */
export function* exportLines(records: number, rows: Iterable<PairRow>): Generator<string> {
  yield `${JSON.stringify({ format: EXPORT_FORMAT, version: EXPORT_VERSION, records, exported: new Date().toISOString() })}\n`;
  for (const { key, report, created } of rows) {
    yield `{"f":${JSON.stringify(key.f)},"g":${JSON.stringify(key.g)},"options":${key.options},"scoreVersion":${key.version},"created":${created},"report":${report}}\n`;
  }
}

/** The longest line an export may have: a pair's report is tens of KiB (a few MiB for models of thousands of layers). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Checks a record's report against its key (report-check.ts, KeyCheck); `where` is "line N". */
export type RecordCheck = (key: PairKey, report: Report, where: string) => string | null;

/**
 * Reads and checks every record of the export `file`, handing each to
 * `accept` in order; returns how many there were. `check` may refuse a
 * record whose report does not fit its key.
 */
export function readExport(file: string, accept: (row: PairRow) => void, check?: RecordCheck): number {
  let header: number | null = null;
  let count = 0;
  let last = 0;
  for (const [line, text] of lines(file)) {
    last = line;
    const fail = (problem: string) => new InputError('E_INPUT_FORMAT', `${file}:${line}`, problem, FIX);
    if (text === '') throw fail('the line is empty');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw fail(`the line is not JSON (${jsonSyntax(err)})`);
    }
    if (header === null) {
      header = checkHeader(value, fail);
      continue;
    }
    const { row, report } = checkRecord(value, fail);
    const problem = check?.(row.key, report, `line ${line}`) ?? null;
    if (problem !== null) throw fail(problem);
    accept(row);
    count++;
  }
  if (header === null) throw new InputError('E_INPUT_FORMAT', file, 'the file is empty', FIX);
  if (count !== header) {
    throw new InputError('E_INPUT_FORMAT', `${file}:${last}`, `the file holds ${count} records, its header says ${header}: it is truncated or was edited`, FIX);
  }
  return count;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkHeader(value: unknown, fail: (problem: string) => InputError): number {
  if (!isRecord(value) || value['format'] !== EXPORT_FORMAT) throw fail(`the first line must be the header, with "format": "${EXPORT_FORMAT}"`);
  const { version, records } = value;
  if (typeof version === 'number' && Number.isInteger(version) && version > EXPORT_VERSION) {
    throw fail(
      `the export's version ${version} is newer than this neurocorr reads (${EXPORT_VERSION}); import it with the neurocorr that wrote it, or a newer one`,
    );
  }
  if (version !== EXPORT_VERSION) throw fail(`the header's "version" must be ${EXPORT_VERSION}`);
  if (typeof records !== 'number' || !Number.isSafeInteger(records) || records < 0) throw fail('the header\'s "records" must be an integer >= 0');
  return records;
}

const RECORD_KEYS = ['f', 'g', 'options', 'scoreVersion', 'created', 'report'];

function checkRecord(value: unknown, fail: (problem: string) => InputError): { row: PairRow; report: Report } {
  if (!isRecord(value)) throw fail('a record must be a JSON object');
  const unknown = Object.keys(value).find((k) => !RECORD_KEYS.includes(k));
  if (unknown !== undefined) throw fail(`unknown key "${unknown}" (a record has ${RECORD_KEYS.join(', ')})`);
  const { f, g, options, scoreVersion, created, report } = value;
  if (!isRecord(options)) throw fail('"options" must be an object');
  if (typeof f !== 'string' || typeof g !== 'string' || typeof scoreVersion !== 'number') throw fail('"f" and "g" must be strings, "scoreVersion" a number');
  const key: PairKey = { f, g, options: canonicalJson(options), version: scoreVersion };
  const problem = pairKeyProblem(key);
  if (problem !== null) throw fail(problem);
  if (typeof created !== 'number' || !Number.isSafeInteger(created) || created < 0) throw fail('"created" must be a time in ms since the epoch');
  const wrong = reportProblem(report);
  if (wrong !== null) throw fail(`"report" is not a pair's report: ${wrong}`);
  return { row: { key, report: JSON.stringify(report), created }, report: report as Report };
}

const CHUNK = 1024 * 1024;

/**
 * The lines of a regular file, numbered from 1, read a chunk at a time (an
 * export may be larger than a string can be); a line longer than
 * MAX_LINE_BYTES is refused as soon as it passes the bound, before it is held.
 */
function* lines(file: string): Generator<[number, string]> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const problem = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : `cannot be read (${String(err)})`;
    throw new InputError('E_INPUT_MISSING', file, problem, 'check the path of the export to import', { cause: err });
  }
  try {
    requireRegularFile(file, fstatSync(fd));
    const buffer = new Uint8Array(CHUNK);
    let pending: Uint8Array[] = [];
    let held = 0;
    let line = 0;
    const text = (parts: readonly Uint8Array[]): string => {
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts));
      } catch (err) {
        throw new InputError('E_INPUT_FORMAT', `${file}:${line}`, 'the text is not UTF-8', FIX, { cause: err });
      }
    };
    for (let position = 0; ;) {
      const n = readSync(fd, buffer, 0, CHUNK, position);
      position += n;
      if (n === 0) {
        if (held > 0) yield [++line, text(pending)];
        return;
      }
      for (let from = 0; from < n;) {
        const nl = buffer.subarray(from, n).indexOf(0x0a);
        const end = nl < 0 ? n : from + nl;
        held += end - from;
        if (held > MAX_LINE_BYTES) {
          const problem = `the line is longer than ${MAX_LINE_BYTES} bytes, the most a record of an export holds`;
          throw new InputError('E_INPUT_FORMAT', `${file}:${line + 1}`, problem, FIX);
        }
        if (end > from) pending.push(buffer.slice(from, end));
        if (nl < 0) break;
        yield [++line, text(pending)];
        pending = [];
        held = 0;
        from = end + 1;
      }
    }
  } finally {
    closeSync(fd);
  }
}
