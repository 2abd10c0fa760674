/**
 * The environment as the CLI sees it: read and checked by the one module
 * that reads environment variables (shared/options/env.ts), and turned into
 * library options here.
 */
import { checkEnv, readEnv, type NeurocorrEnv } from '../shared/options/index.js';
import type { KernelChoice, KernelOptions } from '../worker/kernel-options.js';

export { readEnv };
export type CliEnv = NeurocorrEnv;

/** `choice` with NEUROCORR_NATIVE_ISA, NEUROCORR_NATIVE_ADDON and NEUROCORR_TFJS_BACKEND (raw variables, or an environment already read). */
export function kernelFromEnv(choice: KernelChoice, vars?: Readonly<Record<string, string | undefined>> | CliEnv): KernelOptions {
  const env =
    vars !== undefined && 'problems' in vars && typeof vars.problems === 'object'
      ? (vars as CliEnv)
      : readEnv(vars as Readonly<Record<string, string | undefined>> | undefined);
  checkEnv(env, ['NEUROCORR_NATIVE_ISA', 'NEUROCORR_TFJS_BACKEND', 'NEUROCORR_NATIVE_ADDON']);
  const { nativeIsa: isa, nativeAddon: addon, tfjsBackend } = env;
  return { choice, ...(isa ? { isa } : {}), ...(addon ? { addon } : {}), ...(tfjsBackend ? { tfjsBackend } : {}) };
}
