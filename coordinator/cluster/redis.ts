/**
 * The coordinator's Redis connection: credentials from RedisCredentials (or,
 * discouraged, the URL), never printed; connecting and reconnecting are
 * bounded by `timeoutMs`, after which every pending and later command fails
 * and `lost` is called with a ServiceError, so nothing waits on Redis forever.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { parseServiceUrl, type RedisCredentials } from '../../shared/cluster/index.js';
import { ServiceError, UsageError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe.js';

export interface RedisService {
  readonly url: string;
  readonly credentials?: RedisCredentials;
  readonly timeoutMs: number;
  /** The option that named the URL, for messages (`cluster.redis`, `redis`). */
  readonly option: string;
}

export interface RedisConnection {
  readonly redis: Redis;
  /** The URL with credentials masked. */
  readonly shown: string;
  /** Reports a command that failed because Redis stopped answering (it calls `lost`). */
  check(err: unknown): void;
  close(): void;
}

function pem(path: string | undefined, option: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError((o) => `${o(option)}: cannot read the TLS file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

/** Connects (retrying for up to `timeoutMs`), or throws a ServiceError naming the server, redacted, and the fix. */
export async function connectRedis(service: RedisService, log: Logger, lost?: (err: ServiceError) => void): Promise<RedisConnection> {
  const url = parseServiceUrl('redis', service.url, service.option);
  const c = service.credentials ?? {};
  const seconds = Math.round(service.timeoutMs / 1000);
  let downSince: number | undefined;
  let lastError = '';
  const tls = c.tls !== undefined || url.tls;
  const redis = new Redis({
    host: url.host,
    port: url.port,
    db: url.db,
    ...((c.username ?? url.user) ? { username: c.username ?? url.user } : {}),
    ...((c.password ?? url.password) ? { password: c.password ?? url.password } : {}),
    ...(tls
      ? {
          tls: {
            ...(c.tls?.ca ? { ca: pem(c.tls.ca, service.option) } : {}),
            ...(c.tls?.cert ? { cert: pem(c.tls.cert, service.option) } : {}),
            ...(c.tls?.key ? { key: pem(c.tls.key, service.option) } : {}),
          },
        }
      : {}),
    lazyConnect: true,
    connectTimeout: Math.min(5000, service.timeoutMs),
    // A server that stops answering (paused, overloaded) keeps its TCP connection: only a command timeout notices.
    commandTimeout: service.timeoutMs,
    // Commands wait while Redis restarts; retryStrategy bounds how long.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => {
      downSince ??= Date.now();
      return Date.now() - downSince > service.timeoutMs ? null : Math.min(100 * 2 ** times, 2000);
    },
  });
  const failure = () =>
    new ServiceError(
      'Redis',
      (o) => `cannot reach Redis at ${url.shown} within ${seconds} s${lastError ? ` (${lastError})` : ''}; start redis-server, or fix ${o(service.option)}`,
    );
  let warned = false;
  let refused: ServiceError | null = null;
  redis.on('error', (err: Error) => {
    // ioredis messages name host and port, never the password.
    lastError = err.message;
    // A refused login will not get better by retrying.
    if (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(err.message)) {
      refused ??= new ServiceError('Redis', `cannot log in to Redis at ${url.shown}: ${err.message.split('.')[0]}; check the Redis credentials`);
      redis.disconnect();
      return;
    }
    if (!warned) log.warn({ redis: url.shown, err: err.message }, 'redis connection error; retrying');
    warned = true;
  });
  redis.on('ready', () => {
    downSince = undefined;
    warned = false;
  });
  let ready = false;
  redis.on('end', () => {
    if (ready) lost?.(failure());
  });
  const connected = await new Promise<boolean>((resolve) => {
    redis.once('ready', () => resolve(true));
    redis.once('end', () => resolve(false));
    redis.connect().catch(() => undefined);
  });
  if (!connected) {
    redis.disconnect();
    throw refused ?? failure();
  }
  ready = true;
  const timedOut = (err: unknown) => err instanceof Error && /Command timed out/.test(err.message);
  return {
    redis,
    shown: url.shown,
    check: (err) => {
      if (timedOut(err))
        lost?.(new ServiceError('Redis', `Redis at ${url.shown} did not answer for ${seconds} s; the job's checkpoint is kept, run it again to resume`));
    },
    close: () => redis.disconnect(),
  };
}
