/** Retrying calls to servers that restart (NATS, Redis). */
import { setTimeout as delay } from 'node:timers/promises';
import { InternalError } from './errors.js';
import type { Logger } from './observe.js';

/** Retries `attempt` with backoff (0.1 s doubling to 2 s), logging each failure, for at most `giveUpMs` (servers restart), or until `signal` aborts. */
export async function retry<T>(what: string, log: Logger, attempt: () => Promise<T>, giveUpMs = 120_000, signal?: AbortSignal): Promise<T> {
  const start = Date.now();
  for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
    try {
      return await attempt();
    } catch (err) {
      if (signal?.aborted === true) throw err;
      if (Date.now() - start > giveUpMs) throw new InternalError(`${what} kept failing for ${giveUpMs / 1000} s`, { cause: err });
      log.warn({ err: (err as Error).message }, `${what} failed; retrying`);
      await delay(wait, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
    }
  }
}
