/** A promise with its resolve and reject at hand. */
export interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * A deferred whose rejection is never unhandled: whoever waits on it sees the
 * rejection, and one nobody waited for is dropped (the caller reports the
 * error through its own path).
 */
export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
