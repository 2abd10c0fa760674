/**
 * Where outputs may go, checked before any compute: never onto or into an
 * input (symlinks followed), never onto another output, never onto something
 * that is not a regular file, never onto a symbolic link (a rename would
 * replace the link, and writing through it would change its target), and only
 * in a folder where a file can really be created (a probe file, since as root
 * access() says yes where the file system says no); an existing set's
 * directory is replaced (`force`) only when neurocorr wrote it. Each check
 * then removes the stale temps of dead runs next to the output.
 */
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { dropTemp, removeStaleTemps, tempPath } from '../temp.js';
import { MANIFEST, SHARD_FORMAT } from './shards.js';

/** The real path `path` has, or would have once written: resolved as the system would (links, then `..`) in its longest existing prefix. */
export function realTarget(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? resolve(path) : join(realTarget(parent), basename(path));
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** Why no file can be created in folder `dir` (an errno code such as EACCES or EROFS), or null: an empty `NAME.probe-PID` is created and removed. */
export function unwritableFolder(dir: string, name: string): string | null {
  const probe = tempPath(join(dir, name), 'probe');
  try {
    rmSync(probe, { recursive: true, force: true });
    closeSync(openSync(probe, 'wx'));
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  } finally {
    try {
      dropTemp(probe);
    } catch {
      // nothing was made
    }
  }
}

/** An input set's real paths: itself, then, for a folder, each entry (a link may lead out of it). */
function footprint(input: string): string[] {
  let real: string;
  try {
    real = realpathSync(input);
  } catch {
    return []; // missing: the reader says so
  }
  const paths = [real];
  if (statOrNull(real)?.isDirectory()) {
    for (const name of readdirSync(real)) {
      try {
        paths.push(realpathSync(join(real, name)));
      } catch {
        // a dangling link: nothing to overwrite
      }
    }
  }
  return paths;
}

const within = (path: string, dir: string): boolean => path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);

/** How an output at real path `real` would clash with the inputs, or null. */
function inputClash(real: string, inputs: readonly string[]): string | null {
  for (const input of inputs) {
    const [self, ...entries] = footprint(input);
    if (self === undefined) continue;
    if (real === self) return `is the input ${input}`;
    if (within(real, self)) return `is inside the input ${input}`;
    if (within(self, real)) return `holds the input ${input}`;
    for (const entry of entries) {
      if (real === entry) return `is ${entry}, which the input ${input} links to`;
      if (within(real, entry)) return `is inside ${entry}, which the input ${input} links to`;
      if (within(entry, real)) return `holds ${entry}, which the input ${input} links to`;
    }
  }
  return null;
}

function kind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a regular file';
}

/** An output file and the option that names it. */
export interface FileOutput {
  readonly path: string;
  readonly option: string;
}

/** Fails (exit 2) when an output file could not or must not be written: a missing or unwritable folder, something other than a regular file, a link, an input, the other output. */
export function checkOutputFiles(outputs: readonly FileOutput[], inputs: readonly string[]): void {
  const seen = new Map<string, string>();
  for (const { path, option } of outputs) {
    const dir = dirname(path);
    const folder = statOrNull(dir);
    if (folder === null) {
      throw new UsageError((o) => `${o(option)} ${path}: folder ${resolve(dir)} does not exist; create it first or choose another path`);
    }
    if (!folder.isDirectory()) throw new UsageError((o) => `${o(option)} ${path}: ${resolve(dir)} is ${kind(folder)}, not a folder; choose another path`);
    const st = statOrNull(path);
    if (st !== null && !st.isFile()) {
      throw new UsageError((o) => `${o(option)} ${path} is ${kind(st)}, not a regular file; an output replaces only a regular file: choose another path`);
    }
    const real = realTarget(path);
    const clash = inputClash(real, inputs);
    if (clash !== null) throw new UsageError((o) => `${o(option)} ${path} ${clash}; an output never overwrites an input: choose a path outside the inputs`);
    if (lstatOrNull(path)?.isSymbolicLink()) {
      throw new UsageError((o) => `${o(option)} ${path} is a symbolic link; an output never replaces a link or writes through one: choose another path`);
    }
    const other = seen.get(real);
    if (other !== undefined) throw new UsageError((o) => `${o(other)} and ${o(option)} are the same file ${path}; give each output its own path`);
    const denied = unwritableFolder(dir, basename(path));
    if (denied !== null) {
      throw new UsageError((o) => `${o(option)} ${path}: no file can be created in ${resolve(dir)} (${denied}); choose a folder you can write to`);
    }
    seen.set(real, option);
  }
  for (const { path } of outputs) removeStaleTemps(path);
}

/** How an output set's directory may be written. */
export interface SetOutput {
  readonly inputs: readonly string[];
  /** Replace an existing directory, if `owned` accepts it. */
  readonly force: boolean;
  /** What `force` may replace, e.g. "a shard set written by neurocorr prepare". */
  readonly what: string;
  /** Why an existing directory is not such a set, or null when it is one. */
  readonly owned: (dir: string) => string | null;
}

/** Fails (exit 2) when `out` is, holds or is inside an input, exists and may not be replaced, or is in a folder where nothing can be created. */
export function checkOutputSet(out: string, o: SetOutput): void {
  const clash = inputClash(realTarget(out), o.inputs);
  if (clash !== null) throw new UsageError(`${out} ${clash}; the output must be a new directory outside the input`);
  const st = lstatOrNull(out);
  if (st !== null) {
    if (!o.force) throw new UsageError((n) => `${out} already exists; choose a new output directory, or pass ${n('force')} to replace it`);
    const why = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? o.owned(out) : kind(st);
    if (why !== null) {
      throw new UsageError(
        (n) => `${out} is not ${o.what} (${why}); ${n('force')} replaces only ${o.what}: remove it yourself or choose another output directory`,
      );
    }
  }
  checkSetFolder(out, st?.isDirectory() === true);
  removeStaleTemps(out);
}

/** Fails unless files can be created where `out` goes: in the nearest existing folder above it (the folders between are created), and in `out` itself when it exists. */
function checkSetFolder(out: string, exists: boolean): void {
  let child = resolve(out);
  let dir = dirname(child);
  let st = statOrNull(dir);
  while (st === null && dirname(dir) !== dir) {
    child = dir;
    dir = dirname(dir);
    st = statOrNull(dir);
  }
  if (st !== null && !st.isDirectory()) throw new UsageError(`${out}: ${dir} is ${kind(st)}, not a folder; choose another output directory`);
  const denied = unwritableFolder(dir, basename(child)) ?? (exists ? unwritableFolder(out, 'neurocorr') : null);
  if (denied !== null)
    throw new UsageError(`${out}: no file can be created in ${exists ? `${dir} or ${out}` : dir} (${denied}); choose a folder you can write to`);
}

/** A JSON file's top-level object, or null when it is missing or not one. */
export function readJsonObject(file: string): Record<string, unknown> | null {
  try {
    const json: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Why `dir` holds anything but regular files named in `names`, or null. */
export function strayEntry(dir: string, names: ReadonlySet<string>): string | null {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!names.has(e.name) || !e.isFile()) return `it holds ${e.name}, which neurocorr did not write`;
  }
  return null;
}

/** Why `dir` is not a shard set `prepare` wrote (its manifest, and the shards it lists), or null. */
export function shardSetOwnership(dir: string): string | null {
  const manifest = readJsonObject(join(dir, MANIFEST));
  if (manifest === null || manifest['format'] !== SHARD_FORMAT) return `it has no ${MANIFEST} with "format": "${SHARD_FORMAT}"`;
  const shards = manifest['shards'];
  if (!Array.isArray(shards)) return `its ${MANIFEST} lists no shards`;
  const files = shards.map((s: unknown) => (typeof s === 'object' && s !== null ? (s as Record<string, unknown>)['file'] : undefined));
  return strayEntry(dir, new Set([MANIFEST, ...files.filter((f): f is string => typeof f === 'string')]));
}
