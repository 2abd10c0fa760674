/**
 * The environment variables that tune the kernels and loading (README,
 * Kernels), read here and nowhere deeper: they become options. A bad value is
 * a usage error naming the variable and the values it takes.
 */
import { UsageError } from '../shared/errors.js';
import { NATIVE_ISAS, TFJS_BACKENDS, type KernelChoice, type KernelOptions } from '../worker/loader.js';
import type { NativeLoopsOptions } from '../worker/native/assist.js';

type Env = Readonly<Record<string, string | undefined>>;

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

/** NEUROCORR_JS_STANDARDIZE=1 keeps the TypeScript standardization loops; NEUROCORR_NATIVE_ADDON also applies. */
export function standardizeFromEnv(env: Env = process.env): NativeLoopsOptions {
  const addon = env['NEUROCORR_NATIVE_ADDON'];
  return { ...(addon ? { addon } : {}), disabled: env['NEUROCORR_JS_STANDARDIZE'] === '1' };
}
