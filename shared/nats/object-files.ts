/**
 * Activation sets through the NATS object store, for clusters with no shared
 * volume: `score --upload` puts a set's files there under a name derived from
 * their contents, and each worker rebuilds the set in its own cache folder.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { InputError, ServiceError } from '../errors.js';
import { FILE_BUCKET, type InputRef } from '../cluster/index.js';

function listFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface UploadLog {
  info(fields: object, message: string): void;
}

/** Uploads a set (a folder or a single file) unless the store already holds it, and returns its reference. */
export async function uploadInput(nc: NatsConnection, path: string, log: UploadLog): Promise<InputRef> {
  const full = resolve(path);
  if (!existsSync(full)) throw new InputError('E_INPUT_MISSING', path, 'does not exist', 'check the path');
  const parent = dirname(full);
  const files = await Promise.all(
    listFiles(full).map(async (file) => ({ file, path: relative(parent, file), size: statSync(file).size, sha256: await fileSha256(file) })),
  );
  const set = createHash('sha256')
    .update(JSON.stringify(files.map(({ path: p, size, sha256 }) => [p, size, sha256])))
    .digest('hex');
  const store = await new Objm(nc).create(FILE_BUCKET);
  let bytes = 0;
  for (const f of files) {
    const name = `${set}/${f.path}`;
    if ((await store.info(name))?.size === f.size) continue;
    await store.put({ name }, Readable.toWeb(createReadStream(f.file)) as unknown as ReadableStream<Uint8Array>);
    bytes += f.size;
  }
  log.info({ path, set, files: files.length, uploaded: bytes }, 'activation set in the object store');
  return { kind: 'object', bucket: FILE_BUCKET, set, root: basename(full), files: files.map(({ path: p, size, sha256 }) => ({ path: p, size, sha256 })) };
}

/**
 * Downloads one object into `local` through a temporary file in the same
 * folder (created exclusively), and renames it into place once its sha256
 * matches. The object store checks its own digest at the end of the stream.
 */
export async function downloadObject(nc: NatsConnection, bucket: string, name: string, local: string, sha256: string): Promise<void> {
  const store = await new Objm(nc).create(bucket);
  const object = await store.get(name);
  if (object === null) {
    throw new ServiceError('object store', (o) => `object ${name} is missing from the ${bucket} object store; upload the set again (${o('cluster.upload')})`);
  }
  const partial = `${local}.${process.pid}.part`;
  try {
    await pipeline(Readable.fromWeb(object.data as unknown as WebReadableStream<Uint8Array>), createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    await object.error;
    if ((await fileSha256(partial)) !== sha256)
      throw new ServiceError('object store', `object ${name} in the ${bucket} object store does not have the sha256 the job names`);
    renameSync(partial, local);
  } finally {
    rmSync(partial, { force: true });
  }
}

export { fileSha256 };
