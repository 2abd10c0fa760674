/**
 * The environment variables neurocorr reads, all of them, here and only
 * here: the CLI turns them into library options.
 */
export interface CliEnv {
  /** NEUROCORR_TRACE=1: log when each phase of a run ended. */
  readonly trace: boolean;
  /** NEUROCORR_PROGRESS_MS: milliseconds between plain progress lines off a terminal. */
  readonly progressMs: number | undefined;
  /** NEUROCORR_DEBUG: print stacks with errors. */
  readonly debug: boolean;
  /** NEUROCORR_LOG_LEVEL: pino level of the cluster logs. */
  readonly logLevel: string | undefined;
  /** NEUROCORR_WORKER_FAULT: fault injection for tests and chaos runs (`duplicate`, `slow:MS`). */
  readonly workerFault: string | null;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CliEnv {
  const ms = env['NEUROCORR_PROGRESS_MS'];
  return {
    trace: env['NEUROCORR_TRACE'] === '1',
    progressMs: ms === undefined || ms === '' || !Number.isFinite(Number(ms)) ? undefined : Math.max(0, Number(ms)),
    debug: (env['NEUROCORR_DEBUG'] ?? '') !== '',
    logLevel: env['NEUROCORR_LOG_LEVEL'] || undefined,
    workerFault: env['NEUROCORR_WORKER_FAULT'] || null,
  };
}
