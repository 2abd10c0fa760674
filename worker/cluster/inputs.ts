/**
 * A worker's trust boundary for a job's inputs. Everything in a job spec is
 * untrusted: a path must resolve inside one of the worker's data roots, and
 * an object-store set is checked name by name and written only inside the
 * worker's private cache folder, through real folders (never a symlink),
 * every file verified by sha256 before it is used.
 */
import { lstatSync, mkdirSync, readdirSync, realpathSync, statSync, chmodSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { FILE_BUCKET, type InputRef } from '../../shared/cluster/index.js';
import { UsageError } from '../../shared/errors.js';
import { downloadObject, fileSha256 } from '../../shared/nats/index.js';

/** A job input this worker refuses to read: the message says why, never what any file holds. */
export class UntrustedInputError extends UsageError {}

const HEX64 = /^[0-9a-f]{64}$/;
const SEGMENT = /^[^/\\\0]+$/;

const inside = (root: string, path: string): boolean => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/** Makes the cache folder (0700) or checks an existing one is a real folder owned by this user and private. */
export function privateCacheDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new UsageError((o) => `${o('cacheDir')} ${dir} is not a folder (a symlink or a file); choose another cache folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new UsageError((o) => `${o('cacheDir')} ${dir} belongs to another user (uid ${st.uid}); choose a folder of your own`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return realpathSync(dir);
}

/** Checks an object-store reference field by field; a path inside it must be relative, with no `..` and no empty or odd segment. */
function checkObjectRef(ref: Extract<InputRef, { kind: 'object' }>): void {
  const refuse = (why: string) => new UntrustedInputError(`the job's object-store input is refused: ${why}`);
  if (ref.bucket !== FILE_BUCKET) throw refuse(`bucket ${JSON.stringify(ref.bucket)} is not ${FILE_BUCKET}`);
  if (!HEX64.test(ref.set)) throw refuse('its set name is not a sha256');
  if (!SEGMENT.test(ref.root) || ref.root === '.' || ref.root === '..') throw refuse('its root is not a plain name');
  if (!Array.isArray(ref.files) || ref.files.length === 0 || ref.files.length > 1_000_000) throw refuse('its file list is empty or too long');
  for (const f of ref.files) {
    const parts: string[] = typeof f.path === 'string' ? f.path.split('/') : [];
    if (parts[0] !== ref.root || parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..'))
      throw refuse(`file ${JSON.stringify(f.path)} is not a plain path under ${ref.root}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw refuse(`file ${f.path} has no valid size`);
    if (!HEX64.test(f.sha256)) throw refuse(`file ${f.path} has no valid sha256`);
  }
}

/** Creates `path`'s folders under `root`, each a real folder (an existing symlink anywhere on the way is refused). */
function realFolders(root: string, parts: readonly string[]): string {
  let at = root;
  for (const part of parts) {
    at = join(at, part);
    try {
      const st = lstatSync(at);
      if (!st.isDirectory()) throw new UntrustedInputError(`the cache holds ${at} as something other than a folder; remove it`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(at, { mode: 0o700 });
    }
  }
  return at;
}

/** A verified local copy of each file of an object-store set: downloaded when absent or when its bytes do not match. */
async function materialize(nc: NatsConnection, ref: Extract<InputRef, { kind: 'object' }>, cacheDir: string): Promise<string> {
  checkObjectRef(ref);
  const base = realFolders(cacheDir, [ref.set]);
  for (const f of ref.files) {
    const parts = f.path.split('/');
    const local = join(realFolders(base, parts.slice(0, -1)), parts.at(-1)!);
    let ok = false;
    try {
      const st = lstatSync(local);
      if (!st.isFile()) throw new UntrustedInputError(`the cache holds ${local} as something other than a file; remove it`);
      ok = st.size === f.size && (await fileSha256(local)) === f.sha256;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!ok) await downloadObject(nc, ref.bucket, `${ref.set}/${f.path}`, local, f.sha256);
  }
  return join(base, ref.root);
}

/** Where the worker reads an input: a path inside a data root, or the set in its cache. */
export async function resolveInput(nc: NatsConnection, ref: InputRef, roots: readonly string[], cacheDir: string): Promise<string> {
  if (ref.kind === 'object') return materialize(nc, ref, cacheDir);
  if (roots.length === 0) {
    throw new UntrustedInputError(
      (o) =>
        `this worker reads no shared paths (it was started without ${o('dataRoots')}); start it with ${o('dataRoots')} for the shared folder, or run the coordinator with ${o('cluster.upload')}`,
    );
  }
  let real: string;
  try {
    real = realpathSync(ref.path);
  } catch {
    real = '';
  }
  const realRoots = roots.map(safeRealpath);
  const within = (path: string) => realRoots.some((r) => inside(r, path));
  if (real === '' || !within(real))
    throw new UntrustedInputError(`the job names a path outside this worker's data roots (${roots.join(', ')}), or one that does not exist`);
  const st = statSync(real);
  if (!st.isDirectory() && !st.isFile()) throw new UntrustedInputError('the job names a path that is neither a folder nor a file');
  if (st.isDirectory()) confineLinks(real, within);
  return real;
}

/** Every symlink inside a set's folder must resolve inside the data roots too: a link is no way out of them. */
function confineLinks(dir: string, within: (path: string) => boolean): void {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isSymbolicLink()) continue;
    const link = join(entry.parentPath, entry.name);
    let target = '';
    try {
      target = realpathSync(link);
    } catch {
      // A dangling link is refused below, as one that leads nowhere allowed.
    }
    if (target === '' || !within(target))
      throw new UntrustedInputError(`the set ${dir} holds a link, ${relative(dir, link)}, that leads outside this worker's data roots (or nowhere)`);
  }
}

function safeRealpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path + sep + '\0';
  }
}
