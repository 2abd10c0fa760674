/**
 * Kernel loader: an ordered fallback chain, native -> tfjs -> reference.
 * Every step that fails records why; a kernel asked for by name that cannot
 * load is an error, never a silent fallback.
 */
import { KernelUnavailableError } from '../shared/errors.js';
import { isObject, knownKeys, oneOf, optional, string } from '../shared/validate.js';
import type { Kernel } from './kernel.js';
import { nativeKernel } from './kernels/native.js';
import { referenceKernel } from './kernels/reference.js';
import { loadTfjsKernel, TFJS_BACKENDS, type TfjsBackend } from './kernels/tfjs.js';

export const KERNEL_CHOICES = ['auto', 'native', 'tfjs', 'reference'] as const;
export type KernelChoice = (typeof KERNEL_CHOICES)[number];
export const NATIVE_ISAS = ['auto', 'avx512', 'avx2', 'scalar'] as const;
export { TFJS_BACKENDS };

/** Which kernel to load and how; plain data, so it reaches the pool threads in workerData. */
export interface KernelOptions {
  readonly choice: KernelChoice;
  /** The native kernel's SIMD variant; 'auto' (the default) picks the best this CPU runs. */
  readonly isa?: (typeof NATIVE_ISAS)[number];
  /** The native addon's path, replacing the build locations under the package root. */
  readonly addon?: string;
  /** One tfjs backend instead of the first that loads. */
  readonly tfjsBackend?: TfjsBackend;
}

export interface LoadedKernel {
  readonly kernel: Kernel;
  /** One line per step tried: what loaded, and why the others did not. */
  readonly notes: readonly string[];
}

type Step = (options: KernelOptions, notes: string[]) => Kernel | Promise<Kernel>;

const STEPS: Record<Exclude<KernelChoice, 'auto'>, Step> = {
  native: (options) => nativeKernel(options),
  tfjs: ({ tfjsBackend }, notes) => loadTfjsKernel(notes, tfjsBackend),
  reference: () => referenceKernel,
};

const CHAIN: readonly Exclude<KernelChoice, 'auto'>[] = ['native', 'tfjs', 'reference'];

const describe = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

export async function loadKernel(options: KernelOptions): Promise<LoadedKernel> {
  const { choice } = options;
  const notes: string[] = [];
  const chain = choice === 'auto' ? CHAIN : [choice];
  for (const name of chain) {
    const stepNotes: string[] = [];
    try {
      const kernel = await STEPS[name](options, stepNotes);
      notes.push(...stepNotes, `${name}: loaded as ${kernel.name}`);
      return { kernel, notes };
    } catch (err) {
      notes.push(...stepNotes, `${name}: unavailable (${describe(err)})`);
      if (choice !== 'auto') throw new KernelUnavailableError(`the ${name} kernel was asked for and cannot be loaded: ${notes.join('; ')}`, { cause: err });
    }
  }
  throw new KernelUnavailableError(`no kernel could be loaded: ${notes.join('; ')}`);
}

/** `kernel`: a choice, or an object with the choice and its settings. */
export function kernelOptions(value: unknown, path = 'kernel'): KernelOptions {
  if (value === undefined) return { choice: 'auto' };
  if (typeof value === 'string') return { choice: oneOf(path, value, KERNEL_CHOICES) };
  const o = isObject(path, value);
  knownKeys(path, o, ['choice', 'isa', 'addon', 'tfjsBackend']);
  return {
    choice: optional(o['choice'], (v) => oneOf(`${path}.choice`, v, KERNEL_CHOICES), 'auto'),
    ...(o['isa'] !== undefined ? { isa: oneOf(`${path}.isa`, o['isa'], NATIVE_ISAS) } : {}),
    ...(o['addon'] !== undefined ? { addon: string(`${path}.addon`, o['addon']) } : {}),
    ...(o['tfjsBackend'] !== undefined ? { tfjsBackend: oneOf(`${path}.tfjsBackend`, o['tfjsBackend'], TFJS_BACKENDS) } : {}),
  };
}
