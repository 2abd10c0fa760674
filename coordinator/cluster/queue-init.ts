/**
 * Creates the cluster's JetStream state before any job: the tile and result
 * streams and the job bucket (idempotent). Each job's tile consumer is made
 * by its coordinator, with the job's ack wait and max deliver; an older
 * version's shared consumer is removed here (it would refuse them).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  JOB_BUCKET,
  LEGACY_WORKER_CONSUMER,
  natsCredentials,
  parseServiceUrl,
  RESULT_STREAM,
  TILE_STREAM,
  type NatsCredentials,
} from '../../shared/cluster/index.js';
import { connectNats, ensureStreams } from '../../shared/nats/index.js';
import { isObject, knownKeys, string } from '../../shared/validate.js';
import { num, OPTIONS } from '../../shared/options/index.js';

export interface QueueInitOptions {
  /** NATS server URL (nats:// or tls://). */
  readonly nats: string;
  readonly natsCredentials?: NatsCredentials;
  /** Seconds to keep trying an unreachable NATS (default 60). */
  readonly serviceTimeout?: number;
}

export interface QueueInitResult {
  readonly streams: readonly string[];
  readonly bucket: string;
  /** Whether a stream had to be created. */
  readonly created: boolean;
}

const KEYS = ['nats', 'natsCredentials', 'serviceTimeout'] as const;

export async function initQueue(input: QueueInitOptions): Promise<QueueInitResult> {
  const o = isObject('', input);
  knownKeys('', o, KEYS);
  const url = string('nats', o['nats']);
  parseServiceUrl('nats', url, 'nats');
  const credentials = natsCredentials('natsCredentials', o['natsCredentials']);
  const timeoutMs = num(OPTIONS.serviceTimeout, o['serviceTimeout'], 'serviceTimeout') * 1000;
  const nc = await connectNats({ url, credentials, timeoutMs, option: 'nats' }, 'neurocorr queue-init');
  try {
    const jsm = await jetstreamManager(nc);
    const created = await ensureStreams(jsm);
    await jsm.consumers.delete(TILE_STREAM, LEGACY_WORKER_CONSUMER).catch(() => false);
    await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
    return { streams: [TILE_STREAM, RESULT_STREAM], bucket: JOB_BUCKET, created };
  } finally {
    await nc.close();
  }
}
