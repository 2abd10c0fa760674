/** Commands that write outputs run under `cleanOnSignals`: SIGINT or SIGTERM removes their temp files and exits 130 or 143, as a shell reports. */
import { removeTemps } from '../shared/temp.js';

const SIGNALS = [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const;

export async function cleanOnSignals<T>(run: () => Promise<T>): Promise<T> {
  const handlers = SIGNALS.map(([signal, code]) => {
    const handler = () => {
      removeTemps();
      process.exit(code);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return await run();
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
