/**
 * What a cluster job's spec says: its name, its block size, its inputs, and
 * how two specs of one job name differ. A job name is bound to its inputs
 * and options: a rerun with other ones is refused, naming the difference.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { resultPayloadBytes, type InputRef, type JobSpec } from '../../shared/cluster/index.js';
import { NULL_ROWS } from '../../shared/core/index.js';
import { UsageError } from '../../shared/errors.js';
import { defaultBlockSize } from '../../shared/tiles/index.js';
import { uploadInput, type UploadLog } from '../../shared/nats/index.js';

/**
 * A cheap fingerprint of a set on a shared path: every file's relative path,
 * size and modification time. (Workers verify contents themselves: shard
 * sha256s, and object-store digests.)
 */
function fingerprint(path: string): string {
  const root = resolve(path);
  const files = statSync(root).isDirectory()
    ? readdirSync(root, { withFileTypes: true, recursive: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name))
        .sort()
    : [root];
  const hash = createHash('sha256');
  for (const file of files) {
    const st = statSync(file);
    hash.update(`${relative(root, file)}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

/** The spec's reference to an input: its path and fingerprint, or (uploading) its objects in the NATS object store. */
export async function inputRef(path: string, upload: boolean, nc: NatsConnection, log: UploadLog): Promise<InputRef> {
  return upload ? uploadInput(nc, path, log) : { kind: 'path', path: resolve(path), fingerprint: fingerprint(path) };
}

const describeRef = (ref: InputRef | undefined): string =>
  ref === undefined ? 'none' : ref.kind === 'path' ? ref.path : `${ref.root} in the object store (set ${ref.set.slice(0, 12)})`;

/** What differs between a stored spec and this run's, in words (`labels` name the models); empty when they agree. */
export function specDifferences(was: JobSpec, now: JobSpec, labels: readonly string[]): string[] {
  const out: string[] = [];
  if (was.inputs.length !== now.inputs.length) out.push(`the job had ${was.inputs.length} models, this run has ${now.inputs.length}`);
  now.inputs.forEach((b, k) => {
    const a = was.inputs[k];
    if (a === undefined || JSON.stringify(a) === JSON.stringify(b)) return;
    const side = labels[k] ?? `model ${k}`;
    const samePlace = a.kind === 'path' && b.kind === 'path' && a.path === b.path;
    out.push(
      samePlace ? `${side}'s files at ${describeRef(b)} changed since the job was started` : `${side} was ${describeRef(a)}, this run's is ${describeRef(b)}`,
    );
  });
  const fields = ['pairs', 'options', 'nulls', 'block', 'm', 'n', 'tiles'] as const;
  for (const field of fields) {
    if (JSON.stringify(was[field]) !== JSON.stringify(now[field]))
      out.push(`${field} was ${JSON.stringify(was[field])}, this run's is ${JSON.stringify(now[field])}`);
  }
  return out;
}

export function jobName(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `job-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * The block size: the native default for a 2-thread worker, capped so that
 * the largest result (a null tile: NULL_ROWS blocks of rows and one of
 * columns) fits NATS's max_payload.
 */
export function clusterBlock(m: number, nF: number, nG: number, maxPayload: number, tile: number | undefined): number {
  const block = tile ?? defaultBlockSize({ kernel: 'native', m, nF, nG, threads: 2 });
  const fits = Math.floor((maxPayload - 4096) / ((NULL_ROWS + 1) * resultPayloadBytes(1, 0)));
  if (block > fits) {
    if (tile !== undefined) {
      throw new UsageError(
        (o) => `${o('tile')} ${tile} makes tile results larger than the NATS server's max_payload (${maxPayload} bytes); use ${o('tile')} ${fits} or less`,
      );
    }
    return fits;
  }
  return block;
}
