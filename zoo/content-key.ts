/**
 * Content keys of activation sets: equal keys mean equal activations, so the
 * zoo's results store finds a pair's report again wherever its sets are, and
 * misses it once a set changes.
 *
 * - A shard set (a folder with manifest.json): its checked manifest, which
 *   gives every shard's sha256; the shards are not read (a reader checks each
 *   shard against its sha256 before using it). The manifest's `model` is a
 *   label (the folder prepare read) and is left out.
 * - A folder of .npy files: the name and sha256 of each `*.npy` file and of
 *   `layers.json`, sorted: the files the loader reads.
 * - A .safetensors file: its sha256.
 *
 * The key is the sha256 of that, prefixed with the kind of set and the
 * version of this derivation: 64 hex digits. Files are read only when
 * regular (the input rule: a symlink is judged by its target).
 */
import { createHash } from 'node:crypto';
import { existsSync, type BigIntStats } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../shared/errors.js';
import { MANIFEST, readManifest, requireRegularFile } from '../shared/formats/index.js';
import { canonicalJson } from './canonical-json.js';

/** The derivation's version: a change to what a key covers changes it, so old keys miss rather than mislead. */
export const CONTENT_KEY_VERSION = 1;

/** A file's identity as stat gives it: while it stays the same, the bytes are taken to be the same. */
export interface FileStamp {
  /** Absolute. */
  readonly path: string;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
}

/** Where file hashes are kept between runs (the results store keeps them). */
export interface FileHashCache {
  lookup(stamp: FileStamp): string | null;
  remember(stamp: FileStamp, sha256: string): void;
}

const KINDS_FIX = 'pass a folder of .npy files, a shard set (a folder with manifest.json) or a .safetensors file';
const CHUNK = 4 * 1024 * 1024;
/** A file whose times are both this recent may change again within the same timestamp tick: its hash is not kept. */
const RACY_NS = 2_000_000_000n;

/**
 * The content key of the activation set at `path`. Hashing reads every byte
 * of an npy folder or .safetensors file, so it is asynchronous (a long hash
 * must not hold up the store's lease heartbeat) and uses `cache` for files
 * whose stamp has not changed since they were hashed.
 */
export async function contentKey(path: string, cache?: FileHashCache): Promise<string> {
  const stats = await inputCall(path, () => stat(path));
  if (stats.isDirectory()) {
    if (existsSync(join(path, MANIFEST))) return shardSetKey(path);
    return derive('npy', await npyFolderDigest(path, cache));
  }
  requireRegularFile(path, stats);
  if (!path.toLowerCase().endsWith('.safetensors')) throw new InputError('E_INPUT_FORMAT', path, 'is not an activation set', KINDS_FIX);
  return derive('safetensors', await fileSha256(path, cache));
}

function derive(kind: string, payload: string): string {
  return createHash('sha256').update(`neurocorr content key ${CONTENT_KEY_VERSION} ${kind}\n${payload}`).digest('hex');
}

function shardSetKey(dir: string): string {
  return derive('shards', canonicalJson({ ...readManifest(dir), model: null }));
}

async function npyFolderDigest(dir: string, cache: FileHashCache | undefined): Promise<string> {
  const names = (await inputCall(dir, () => readdir(dir))).filter((n) => n.endsWith('.npy') || n === 'layers.json').sort();
  if (!names.some((n) => n.endsWith('.npy'))) throw new InputError('E_INPUT_MISSING', dir, 'directory holds no .npy files', KINDS_FIX);
  let payload = '';
  // One file at a time: the disk is the limit, and parallel reads would only seek.
  for (const name of names) payload += `${name}\0${await fileSha256(join(dir, name), cache)}\n`;
  return payload;
}

/**
 * The sha256 of a regular file, from `cache` when its stamp (path, size,
 * inode, mtime and ctime in nanoseconds) is the one it was hashed with.
 *
 * Why that is safe enough: writing a file moves its mtime and ctime, and
 * only the kernel sets ctime (utimes and `touch -d` set mtime, and ctime to
 * now), so an unchanged stamp means unchanged bytes unless the clock went
 * back or the file system keeps no real ctime (some FUSE and SMB mounts). A
 * write in the same timestamp tick as the hash would also go unseen, so a
 * file whose mtime and ctime are both less than 2 s old is hashed but not
 * cached (git's "racily clean" rule). Not seen either: bytes changed beneath
 * the file system (a restored block device, a tampered disk).
 * `ZooStore.forgetFileHashes` makes every file be hashed again.
 */
export async function fileSha256(path: string, cache?: FileHashCache): Promise<string> {
  const stamp = await stampOf(path);
  const cached = cache?.lookup(stamp);
  if (cached) return cached;
  const { sha256, before, after } = await hashFile(path);
  if (!sameFile(before, after)) {
    const fix = 'hash it again once nothing writes it (the zoo keys a set before scoring it, so it must not change during a run)';
    throw new InputError('E_INPUT_VALUES', path, 'changed while it was being read', fix);
  }
  // A write sets both times to now, so it can go unseen only if both were already in the current tick.
  const older = after.mtimeNs < after.ctimeNs ? after.mtimeNs : after.ctimeNs;
  if (cache && sameFile(stamp, after) && BigInt(Date.now()) * 1_000_000n - older >= RACY_NS) cache.remember(stamp, sha256);
  return sha256;
}

async function stampOf(path: string): Promise<FileStamp> {
  const s = await inputCall(path, () => stat(path, { bigint: true }));
  if (!s.isFile()) requireRegularFile(path, await stat(path));
  return { path: resolve(path), size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, ino: s.ino };
}

type Stamped = Pick<BigIntStats, 'size' | 'mtimeNs' | 'ctimeNs' | 'ino'>;

const sameFile = (a: Stamped, b: Stamped): boolean => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

async function hashFile(path: string): Promise<{ sha256: string; before: BigIntStats; after: BigIntStats }> {
  // Checked before the open too (stampOf): opening a FIFO would block.
  const handle = await inputCall(path, () => open(path, 'r'));
  try {
    const before = await handle.stat({ bigint: true });
    if (!before.isFile()) requireRegularFile(path, await handle.stat());
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(CHUNK);
    for (let position = 0; ;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return { sha256: hash.digest('hex'), before, after: await handle.stat({ bigint: true }) };
  } finally {
    await handle.close();
  }
}

/** Runs an fs call, turning a failure into an InputError naming `path`. */
async function inputCall<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InputError) throw err;
    const missing = err instanceof Error && 'code' in err && err.code === 'ENOENT';
    const problem = missing ? 'no such file or directory' : `cannot be read (${err instanceof Error ? err.message : String(err)})`;
    throw new InputError('E_INPUT_MISSING', path, problem, `check the path; ${KINDS_FIX}`, { cause: err });
  }
}
