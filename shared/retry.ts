/** Retrying calls to servers that restart (NATS, Redis). */
import { InternalError } from './errors.js';
import type { Logger } from './observe.js';

/** Retries `attempt` with backoff (0.1 s doubling to 2 s), logging each failure, for at most `giveUpMs`: servers restart. */
export async function retry<T>(what: string, log: Logger, attempt: () => Promise<T>, giveUpMs = 120_000): Promise<T> {
  const start = Date.now();
  for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() - start > giveUpMs) throw new InternalError(`${what} kept failing for ${giveUpMs / 1000} s`, { cause: err });
      log.warn({ err: (err as Error).message }, `${what} failed; retrying`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
