/**
 * Creates the cluster's JetStream state before any job: the tile and result
 * streams, the job bucket and the workers' durable consumer. An autoscaler
 * that reads the consumer's pending count (KEDA's nats-jetstream trigger)
 * needs the consumer to exist while no worker and no coordinator runs.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  DEFAULT_TILE_QUEUE,
  JOB_BUCKET,
  natsCredentials,
  parseServiceUrl,
  TILE_STREAM,
  WORKER_CONSUMER,
  type NatsCredentials,
} from '../../shared/cluster/index.js';
import { connectNats, ensureStreams, ensureWorkerConsumer } from '../../shared/nats/index.js';
import { integer, isObject, knownKeys, number, optional, string } from '../../shared/validate.js';

export interface QueueInitOptions {
  /** NATS server URL (nats:// or tls://). */
  readonly nats: string;
  readonly natsCredentials?: NatsCredentials;
  /** Seconds a worker may hold a tile without a heartbeat (default 30). */
  readonly ackWait?: number;
  /** Deliveries of a tile before its job fails (default 5). */
  readonly maxDeliver?: number;
  /** Seconds to keep trying an unreachable NATS (default 60). */
  readonly serviceTimeout?: number;
}

export interface QueueInitResult {
  readonly stream: string;
  readonly consumer: string;
  /** Whether a stream had to be created. */
  readonly created: boolean;
  readonly ackWait: number;
  readonly maxDeliver: number;
}

const KEYS = ['nats', 'natsCredentials', 'ackWait', 'maxDeliver', 'serviceTimeout'] as const;

export async function initQueue(input: QueueInitOptions): Promise<QueueInitResult> {
  const o = isObject('', input);
  knownKeys('', o, KEYS);
  const url = string('nats', o['nats']);
  parseServiceUrl('nats', url, 'nats');
  const credentials = natsCredentials('natsCredentials', o['natsCredentials']);
  const queue = {
    ackWaitMs: optional(o['ackWait'], (v) => number('ackWait', v, 0.5, 86_400), DEFAULT_TILE_QUEUE.ackWaitMs / 1000) * 1000,
    maxDeliver: optional(o['maxDeliver'], (v) => integer('maxDeliver', v, 1, 1000), DEFAULT_TILE_QUEUE.maxDeliver),
  };
  const timeoutMs = optional(o['serviceTimeout'], (v) => number('serviceTimeout', v, 0.1, 86_400), 60) * 1000;
  const nc = await connectNats({ url, credentials, timeoutMs, option: 'nats' }, 'neurocorr queue-init');
  try {
    const jsm = await jetstreamManager(nc);
    const created = await ensureStreams(jsm);
    await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
    const set = await ensureWorkerConsumer(jsm, queue);
    return { stream: TILE_STREAM, consumer: WORKER_CONSUMER, created, ackWait: set.ackWaitMs / 1000, maxDeliver: set.maxDeliver };
  } finally {
    await nc.close();
  }
}
