/**
 * The environment variables neurocorr reads, all of them, here and only
 * here: the CLI turns them into library options. A bad value is a usage
 * error naming the variable and the values it takes.
 */
import { UsageError } from '../shared/errors.js';
import { NATIVE_ISAS, TFJS_BACKENDS, type KernelChoice, type KernelOptions } from '../worker/kernel-options.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface CliEnv {
  /** NEUROCORR_TRACE=1: log when each phase of a run ended. */
  readonly trace: boolean;
  /** NEUROCORR_PROGRESS_MS: milliseconds between plain progress lines off a terminal. */
  readonly progressMs: number | undefined;
  /** NEUROCORR_DEBUG: print stacks with errors. */
  readonly debug: boolean;
  /** NEUROCORR_LOG_LEVEL: pino level of the cluster logs. */
  readonly logLevel: string | undefined;
  /** NEUROCORR_WORKER_FAULT: fault injection for tests and chaos runs (`duplicate`, `slow:MS`, `wedge:N`, `lie`). */
  readonly workerFault: string | null;
  /** NEUROCORR_JS_STANDARDIZE=1: keep the TypeScript standardization loops. */
  readonly jsStandardize: boolean;
  /** XDG_CACHE_HOME: where the worker's default cache folder goes. */
  readonly cacheHome: string | undefined;
  /** The variables as read, for the kernel settings and secrets (NEUROCORR_NATS_PASSWORD, ...), used when a command needs them. */
  readonly vars: Env;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CliEnv {
  const ms = env['NEUROCORR_PROGRESS_MS'];
  return {
    trace: env['NEUROCORR_TRACE'] === '1',
    progressMs: ms === undefined || ms === '' || !Number.isFinite(Number(ms)) ? undefined : Math.max(0, Number(ms)),
    debug: (env['NEUROCORR_DEBUG'] ?? '') !== '',
    logLevel: env['NEUROCORR_LOG_LEVEL'] || undefined,
    workerFault: env['NEUROCORR_WORKER_FAULT'] || null,
    jsStandardize: env['NEUROCORR_JS_STANDARDIZE'] === '1',
    cacheHome: env['XDG_CACHE_HOME'] || undefined,
    vars: { ...env },
  };
}

/** An unset or empty variable is undefined. */
function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[]): T | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${name}=${value} is not one of ${allowed.join(', ')}`);
  return value as T;
}

/** `choice` with NEUROCORR_NATIVE_ISA, NEUROCORR_NATIVE_ADDON and NEUROCORR_TFJS_BACKEND. */
export function kernelFromEnv(choice: KernelChoice, env: Env = process.env): KernelOptions {
  const isa = oneOf(env, 'NEUROCORR_NATIVE_ISA', NATIVE_ISAS);
  const tfjsBackend = oneOf(env, 'NEUROCORR_TFJS_BACKEND', TFJS_BACKENDS);
  const addon = env['NEUROCORR_NATIVE_ADDON'];
  return { choice, ...(isa ? { isa } : {}), ...(addon ? { addon } : {}), ...(tfjsBackend ? { tfjsBackend } : {}) };
}
