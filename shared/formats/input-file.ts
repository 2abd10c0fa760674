/**
 * Input files are opened only when they are regular files: a FIFO blocks the
 * first read forever, and a device such as /dev/zero never ends. stat()
 * follows symlinks, so a link is judged by what it points to. JSON inputs
 * are also capped in size, since they are parsed whole.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { type ErrorCode, InputError, type Message } from '../errors.js';

/** The most bytes of a JSON input (layers.json, manifest.json) neurocorr reads. */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

const REGULAR_FIX = 'pass a regular file: FIFOs, devices and sockets (or symlinks to them) are not read';

function kind(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  if (stats.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/** Throws unless `stats` (of `file`) is a regular file. */
export function requireRegularFile(file: string, stats: Stats): void {
  if (!stats.isFile()) throw new InputError('E_INPUT_FORMAT', file, `is ${kind(stats)}, not a regular file`, REGULAR_FIX);
}

/** The size of `file`, which must be a regular file; stat errors (ENOENT...) are thrown as they are. */
export function regularFileSize(file: string): number {
  const stats = statSync(file);
  requireRegularFile(file, stats);
  return stats.size;
}

export function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) {
      throw new InputError(
        'E_INPUT_TRUNCATED',
        file,
        `file ended at byte ${position + done}, expected ${into.length - done} more`,
        're-export the file; it may have been truncated while in use',
      );
    }
    done += n;
  }
}

/** The whole of a regular file of at most `limit` bytes; `code` and `fix` make the error when it is larger. */
export function readSmallFile(file: string, limit: number, code: ErrorCode, fix: Message): Uint8Array {
  const size = regularFileSize(file);
  const tooLarge = (bytes: number) =>
    new InputError(code, file, `is ${bytes} bytes, over the limit of ${limit} bytes (${(limit / 2 ** 20).toFixed(0)} MiB) for this file`, fix);
  if (size > limit) throw tooLarge(size);
  const fd = openSync(file, 'r');
  try {
    // Checked again on the open file: it may have been replaced since the stat.
    const stats = fstatSync(fd);
    requireRegularFile(file, stats);
    if (stats.size > limit) throw tooLarge(stats.size);
    const bytes = new Uint8Array(stats.size);
    readExactly(fd, bytes, 0, file);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * What is wrong with text that JSON.parse refused, without quoting it: V8's
 * messages include a piece of the text, and an error can travel (a worker's
 * failure goes back over NATS) where the file's contents must not.
 */
export function jsonSyntax(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  if (/end of JSON input/.test(message)) return 'it ends before the JSON does';
  const at = / at position (\d+)/.exec(message);
  return at ? `a JSON syntax error at character ${at[1]}` : 'a JSON syntax error';
}
