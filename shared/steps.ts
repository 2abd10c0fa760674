/**
 * Long writers as generators of steps, run whole (`runSteps`) or with the
 * event loop let in between steps (`runStepsAsync`), so a signal can stop
 * them. A step yields `true` where the loop must be let in (before a commit),
 * otherwise it is let in once 20 ms have passed.
 */
export type Steps<T> = Generator<boolean | undefined, T, undefined>;

export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

export async function runStepsAsync<T>(steps: Steps<T>): Promise<T> {
  let last = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (step.value === true || performance.now() - last > 20) {
      await new Promise((resolve) => setImmediate(resolve));
      last = performance.now();
    }
  }
}
