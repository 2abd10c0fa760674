/**
 * NATS connection and JetStream set-up shared by coordinator and workers.
 * Credentials come from NatsCredentials (user and password, token, nkey seed,
 * .creds file, TLS files) or, discouraged, from the URL; none ever appears in
 * a log or an error. Connecting retries for a bounded time, then fails with a
 * ServiceError; a connection that stays down longer than that is reported
 * through `watchConnection`, so nothing waits on NATS forever.
 */
import { readFileSync } from 'node:fs';
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import {
  credsAuthenticator,
  NatsConnectionImpl,
  nkeyAuthenticator,
  setTransportFactory,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
// nats.js does not export its Node transport from the package's root.
import { NodeTransport, nodeResolveHost } from '@nats-io/transport-node/lib/node_transport.js';
import { ServiceError, UsageError } from '../errors.js';
import {
  LEGACY_WORKER_CONSUMER,
  RESULT_STREAM,
  TILE_STREAM,
  coordinatorConsumer,
  tileConsumer,
  tileSubject,
  parseServiceUrl,
  jobResults,
  type NatsCredentials,
  type TileQueueConfig,
} from '../cluster/index.js';

export interface NatsService {
  readonly url: string;
  readonly credentials?: NatsCredentials;
  /** How long to keep trying to reach the server (and how long it may stay unreachable mid-run). */
  readonly timeoutMs: number;
  /** The option that named the URL, for messages (`cluster.nats`, `nats`). */
  readonly option: string;
}

function readSecretFile(path: string, what: string, option: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new UsageError((o) => `${o(option)}: cannot read the ${what} file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

function natsOptions(service: NatsService, name: string): ConnectionOptions {
  const url = parseServiceUrl('nats', service.url, service.option);
  const c = service.credentials ?? {};
  const user = c.user ?? (url.user !== '' && url.password !== '' ? url.user : undefined);
  const pass = c.password ?? (url.password !== '' ? url.password : undefined);
  const token = c.token ?? (url.user !== '' && url.password === '' ? url.user : undefined);
  const tls = c.tls !== undefined || url.tls;
  const authenticator =
    c.credsFile !== undefined
      ? credsAuthenticator(readSecretFile(c.credsFile, 'credentials', `${service.option}Creds`))
      : c.nkeySeed !== undefined
        ? nkeyAuthenticator(new TextEncoder().encode(c.nkeySeed.trim()))
        : undefined;
  return {
    servers: `${url.host.includes(':') ? `[${url.host}]` : url.host}:${url.port}`,
    name,
    // Keep trying through a server restart; watchConnection bounds how long.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: Math.min(5000, service.timeoutMs),
    // A paused or wedged server keeps its TCP connection; pings notice it well within the service timeout.
    pingInterval: Math.max(1000, Math.min(20_000, Math.floor(service.timeoutMs / 3))),
    maxPingOut: 2,
    ...(user !== undefined && pass !== undefined ? { user, pass } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(authenticator !== undefined ? { authenticator } : {}),
    ...(tls
      ? { tls: { ...(c.tls?.ca ? { caFile: c.tls.ca } : {}), ...(c.tls?.cert ? { certFile: c.tls.cert } : {}), ...(c.tls?.key ? { keyFile: c.tls.key } : {}) } }
      : {}),
  };
}

/**
 * nats.js's Node transport, except that closing one that never got the
 * server's INFO destroys its socket: nats.js leaves that socket open (a port
 * that accepts and stays silent, a paused server), and it kept the process of
 * a failed connect, or of a connection closed while reconnecting, alive.
 */
class ClosingTransport extends NodeTransport {
  override close(err?: Error): Promise<void> {
    if (!this.connected) this.discard();
    return super.close(err);
  }
}

/** nats.js's `connect`, with ClosingTransport for this connection and its reconnects. */
function connect(options: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new ClosingTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(options);
}

/** Connects, retrying for up to `service.timeoutMs`; then a ServiceError that names the server (redacted) and the fix. */
export async function connectNats(service: NatsService, name: string, log?: (line: string) => void): Promise<NatsConnection> {
  const options = natsOptions(service, name);
  const shown = parseServiceUrl('nats', service.url, service.option).shown;
  const deadline = Date.now() + service.timeoutMs;
  for (let wait = 250, said = false; ; wait = Math.min(wait * 2, 2000)) {
    try {
      return await connect(options);
    } catch (err) {
      const message = (err as Error).message;
      // A refused login will not get better by waiting.
      const denied = /authorization|authentication|permissions/i.test(message);
      if (denied || Date.now() + wait > deadline) {
        throw new ServiceError(
          'NATS',
          (o) =>
            `cannot ${denied ? 'log in to' : 'reach'} NATS at ${shown}${denied ? '' : ` within ${Math.round(service.timeoutMs / 1000)} s`}: ${message}; ${denied ? 'check the NATS credentials' : `start nats-server with -js, or fix ${o(service.option)}`}`,
          { cause: err },
        );
      }
      if (!said) log?.(`NATS at ${shown} is not reachable yet (${message}); retrying for up to ${Math.round(service.timeoutMs / 1000)} s`);
      said = true;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/**
 * Calls `lost` with a ServiceError once the connection has been down (or
 * reconnecting) for longer than `timeoutMs`; a reconnect in time resets it.
 * `connected` hears every drop and every reconnect. Returns a function that
 * stops watching.
 */
export function watchConnection(
  nc: NatsConnection,
  service: NatsService,
  lost: (err: ServiceError) => void,
  connected: (up: boolean) => void = () => undefined,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const shown = parseServiceUrl('nats', service.url, service.option).shown;
  void (async () => {
    for await (const status of nc.status()) {
      if (stopped) return;
      if (status.type === 'disconnect' || status.type === 'reconnecting') {
        connected(false);
        timer ??= setTimeout(
          () =>
            lost(
              new ServiceError(
                'NATS',
                `lost NATS at ${shown} for more than ${Math.round(service.timeoutMs / 1000)} s; the job's state is kept, run it again to resume`,
              ),
            ),
          service.timeoutMs,
        );
      } else if (status.type === 'reconnect') {
        connected(true);
        clearTimeout(timer);
        timer = undefined;
      }
    }
  })().catch(() => undefined);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

const nanos = (ms: number): number => Math.round(ms * 1e6);

/** Creates both streams if missing (tiles as a work queue, results kept until the coordinator acks them); true when one was missing. */
export async function ensureStreams(jsm: JetStreamManager): Promise<boolean> {
  let created = false;
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
      created = true;
    }
  }
  return created;
}

/** "filtered consumer not unique on workqueue stream": another consumer's filter covers this one's. */
const WORK_QUEUE_OVERLAP = 10100;

/**
 * A job's durable tile consumer, with the job's own ack wait and max deliver
 * (the coordinator's settings; another job's are its own). An older version's
 * shared consumer, whose filter covers every job, is removed first.
 */
export async function ensureTileConsumer(jsm: JetStreamManager, job: string, config: TileQueueConfig): Promise<boolean> {
  const name = tileConsumer(job);
  const settings = { ack_wait: nanos(config.ackWaitMs), max_deliver: config.maxDeliver };
  try {
    await jsm.consumers.info(TILE_STREAM, name);
    await jsm.consumers.update(TILE_STREAM, name, settings);
    return false;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
  }
  const add = () =>
    jsm.consumers.add(TILE_STREAM, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      filter_subject: tileSubject(job),
      max_ack_pending: -1,
      ...settings,
    });
  try {
    await add();
  } catch (err) {
    if (!isApiError(err, WORK_QUEUE_OVERLAP)) throw err;
    await jsm.consumers.delete(TILE_STREAM, LEGACY_WORKER_CONSUMER).catch(() => false);
    await add();
  }
  return true;
}

/** The coordinator's durable consumer of its job's results (unacked results come back to a restarted coordinator); true when it was missing. */
export async function ensureResultConsumer(jsm: JetStreamManager, job: string, ackWaitMs: number): Promise<boolean> {
  const name = coordinatorConsumer(job);
  try {
    const info = await jsm.consumers.info(RESULT_STREAM, name);
    if (info.config.filter_subject === jobResults(job)) {
      await jsm.consumers.update(RESULT_STREAM, name, { ack_wait: nanos(ackWaitMs) });
      return false;
    }
    // An older version's consumer, on the job's one results subject: results now come on one subject per worker.
    await jsm.consumers.delete(RESULT_STREAM, name);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
  }
  await jsm.consumers.add(RESULT_STREAM, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: jobResults(job),
    ack_wait: nanos(ackWaitMs),
    max_ack_pending: -1,
  });
  return true;
}

/** A JetStream API error with this code (JetStreamApiCodes). */
export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
