/**
 * The coordinator's Redis connection: credentials from RedisCredentials (or,
 * discouraged, the URL), never printed; connecting and reconnecting are
 * bounded by `timeoutMs` (a server that accepts and never answers included),
 * after which every pending and later command fails and `lost` is called with
 * a ServiceError, so nothing waits on Redis forever. A server whose replies
 * are not Redis's protocol is a ServiceError at once, never a crash.
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { parseServiceUrl, type RedisCredentials, type ServiceUrl } from '../../shared/cluster/index.js';
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
  /**
   * Reports a command that failed because Redis stopped answering: calls
   * `lost`, and disconnects, so that every later command fails at once
   * instead of waiting out the timeout again. Returns that error, or null
   * for any other failure.
   */
  check(err: unknown): ServiceError | null;
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

/** ioredis's options: credentials, TLS files, and every wait bounded by the service timeout. */
function redisOptions(service: RedisService, url: ServiceUrl, retryStrategy: (times: number) => number | null): RedisOptions {
  const c = service.credentials ?? {};
  const tls = c.tls !== undefined || url.tls;
  return {
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
    retryStrategy,
    // A disconnect ends the socket, then destroys it after this long if the server has not closed it (a paused one never does); the timer holds the process.
    disconnectTimeout: 200,
  };
}

/**
 * Hands `garbled` what ioredis's reply parser throws: it parses in the
 * socket's 'data' listener, so a reply it cannot parse (a negative or huge
 * length, say) was an uncaught exception that killed the process.
 */
function guardParser(redis: Redis, garbled: (err: unknown) => void): void {
  // Emitted (on the next tick) after ioredis attached its parser, and before the socket reads a reply.
  redis.on('connect', () => {
    const stream = redis.stream;
    const emit = stream.emit as (this: typeof stream, event: string | symbol, ...args: unknown[]) => boolean;
    stream.emit = function (this: typeof stream, event: string | symbol, ...args: unknown[]): boolean {
      try {
        return emit.call(this, event, ...args);
      } catch (err) {
        if (event !== 'data') throw err;
        garbled(err);
        return true;
      }
    } as typeof stream.emit;
  });
}

/** Connects (retrying for up to `timeoutMs` in all), or throws a ServiceError naming the server, redacted, and the fix. */
export async function connectRedis(service: RedisService, log: Logger, lost?: (err: ServiceError) => void): Promise<RedisConnection> {
  const url = parseServiceUrl('redis', service.url, service.option);
  const seconds = Math.round(service.timeoutMs / 1000);
  // The first connect counts: a server that accepts and never answers gets no more time than one that refuses.
  let downSince: number | undefined = Date.now();
  let lastError = '';
  const redis = new Redis(
    redisOptions(service, url, (times) => {
      downSince ??= Date.now();
      return Date.now() - downSince > service.timeoutMs ? null : Math.min(100 * 2 ** times, 2000);
    }),
  );
  const failure = () =>
    new ServiceError(
      'Redis',
      (o) => `cannot reach Redis at ${url.shown} within ${seconds} s${lastError ? ` (${lastError})` : ''}; start redis-server, or fix ${o(service.option)}`,
    );
  // A refused login, or a server that does not speak Redis, will not get better by retrying.
  let refused: ServiceError | null = null;
  const refuse = (err: ServiceError) => {
    refused ??= err;
    redis.disconnect();
  };
  const garbled = (err: unknown) => refuse(notRedis(url.shown, service.option, err instanceof Error ? err.message : String(err)));
  guardParser(redis, garbled);
  let warned = false;
  redis.on('error', (err: Error) => {
    // ioredis messages name host and port, never the password.
    lastError = err.message;
    if (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(err.message)) {
      refuse(new ServiceError('Redis', `cannot log in to Redis at ${url.shown}: ${err.message.split('.')[0]}; check the Redis credentials`));
      return;
    }
    if (err.name === 'ParserError') return garbled(err);
    if (!warned) log.warn({ redis: url.shown, err: err.message }, 'redis connection error; retrying');
    warned = true;
  });
  redis.on('ready', () => {
    downSince = undefined;
    warned = false;
  });
  let ready = false;
  redis.on('end', () => {
    if (ready) lost?.(refused ?? failure());
  });
  if (!(await firstConnect(redis, service.timeoutMs, garbled))) {
    redis.disconnect();
    throw refused ?? failure();
  }
  ready = true;
  const timedOut = (err: unknown) => err instanceof Error && /Command timed out/.test(err.message);
  return {
    redis,
    shown: url.shown,
    check: (err) => {
      if (!timedOut(err)) return null;
      const gone = new ServiceError('Redis', `Redis at ${url.shown} did not answer for ${seconds} s; the job's checkpoint is kept, run it again to resume`);
      lost?.(gone);
      redis.disconnect();
      return gone;
    },
    close: () => redis.disconnect(),
  };
}

function notRedis(shown: string, option: string, why: string): ServiceError {
  return new ServiceError(
    'Redis',
    (o) => `the server at ${shown} does not answer as Redis does (${why.split('. ')[0]}); check that ${o(option)} names a Redis server`,
  );
}

/**
 * True once Redis is ready and answers PING with PONG, false when it ended,
 * failed, or `timeoutMs` passed first; a server that answers PING with
 * anything else (ioredis takes a `$-9` for null) is handed to `garbled`.
 */
async function firstConnect(redis: Redis, timeoutMs: number, garbled: (err: unknown) => void): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)));
  const ready = new Promise<boolean>((resolve) => {
    redis.once('ready', () => resolve(true));
    redis.once('end', () => resolve(false));
    redis.connect().catch(() => undefined);
  }).then(async (up) => {
    if (!up) return false;
    const pong: unknown = await redis.ping().catch((err: unknown) => err);
    // An error reply is Redis's protocol too (an ACL user may not be allowed PING).
    if (pong === 'PONG' || (pong instanceof Error && pong.name === 'ReplyError')) return true;
    if (!(pong instanceof Error)) garbled(new Error(`PING answered with ${JSON.stringify(pong)}`));
    return false;
  });
  try {
    return await Promise.race([ready, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
