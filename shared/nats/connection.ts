/**
 * NATS connection and JetStream set-up shared by coordinator and workers.
 * Credentials come only from the URL (user:pass@ or token@; tls:// for TLS)
 * and never appear in logs or errors: use redactUrl for anything printed.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { ServiceError, UsageError } from '../errors.js';
import {
  DEFAULT_TILE_QUEUE,
  RESULT_STREAM,
  TILE_STREAM,
  WORKER_CONSUMER,
  coordinatorConsumer,
  redactUrl,
  resultSubject,
  type TileQueueConfig,
} from '../cluster/index.js';

function natsOptions(url: string, name: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(
      (o) => `${o('cluster.nats')} ${redactUrl(url)} is not a URL: use nats://host:4222 (or tls://, with user:pass@ or token@ for credentials)`,
    );
  }
  if (!['nats:', 'tls:'].includes(u.protocol)) throw new UsageError((o) => `${o('cluster.nats')} ${redactUrl(url)}: the scheme must be nats:// or tls://`);
  const server = `${u.hostname}:${u.port || '4222'}`;
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  return {
    servers: server,
    name,
    // Keep trying through a server restart; JetStream state survives on disk.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    ...(user && pass ? { user, pass } : user ? { token: user } : {}),
    ...(u.protocol === 'tls:' ? { tls: {} } : {}),
  };
}

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  const options = natsOptions(url, name);
  try {
    return await connect(options);
  } catch (err) {
    throw new ServiceError(
      'NATS',
      (o) => `cannot reach NATS at ${redactUrl(url)}: ${(err as Error).message}; start nats-server with -js, or fix ${o('cluster.nats')}`,
      {
        cause: err,
      },
    );
  }
}

const nanos = (ms: number): number => Math.round(ms * 1e6);

/** Creates both streams if missing: tiles as a work queue, results kept until the coordinator acks them. */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  const want = [
    { name: TILE_STREAM, subjects: ['neurocorr.tiles.>'] },
    { name: RESULT_STREAM, subjects: ['neurocorr.results.>'] },
  ];
  for (const { name, subjects } of want) {
    try {
      await jsm.streams.info(name);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
      await jsm.streams.add({ name, subjects, retention: RetentionPolicy.Workqueue, storage: StorageType.File });
    }
  }
}

/**
 * The workers' shared durable consumer. The coordinator sets ack_wait and
 * max_deliver for its job (last writer wins; they are per cluster, not per
 * job); a worker only creates it with defaults when it is missing.
 */
export async function ensureWorkerConsumer(jsm: JetStreamManager, config: TileQueueConfig | null): Promise<TileQueueConfig> {
  const settings = {
    ack_wait: nanos((config ?? DEFAULT_TILE_QUEUE).ackWaitMs),
    max_deliver: (config ?? DEFAULT_TILE_QUEUE).maxDeliver,
  };
  try {
    const info = await jsm.consumers.info(TILE_STREAM, WORKER_CONSUMER);
    if (config === null)
      return {
        ackWaitMs: (info.config.ack_wait ?? nanos(DEFAULT_TILE_QUEUE.ackWaitMs)) / 1e6,
        maxDeliver: info.config.max_deliver ?? DEFAULT_TILE_QUEUE.maxDeliver,
      };
    await jsm.consumers.update(TILE_STREAM, WORKER_CONSUMER, settings);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(TILE_STREAM, {
      durable_name: WORKER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      filter_subject: 'neurocorr.tiles.>',
      max_ack_pending: -1,
      ...settings,
    });
  }
  return config ?? DEFAULT_TILE_QUEUE;
}

/** The coordinator's durable consumer of its job's results; unacked results come back to a restarted coordinator. */
export async function ensureResultConsumer(jsm: JetStreamManager, job: string, ackWaitMs: number): Promise<void> {
  const name = coordinatorConsumer(job);
  try {
    await jsm.consumers.info(RESULT_STREAM, name);
    await jsm.consumers.update(RESULT_STREAM, name, { ack_wait: nanos(ackWaitMs) });
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(RESULT_STREAM, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: resultSubject(job),
      ack_wait: nanos(ackWaitMs),
      max_ack_pending: -1,
    });
  }
}

/** A JetStream API error with this code (JetStreamApiCodes). */
export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
