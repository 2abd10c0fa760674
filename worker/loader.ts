/**
 * Kernel loader: an ordered fallback chain, native -> tfjs -> reference.
 * Every step that fails records why; a kernel asked for by name that cannot
 * load is an error, never a silent fallback.
 */
import { KernelUnavailableError } from '../shared/errors.js';
import type { Kernel } from './kernel.js';
import type { KernelChoice, KernelOptions } from './kernel-options.js';

export * from './kernel-options.js';

export interface LoadedKernel {
  readonly kernel: Kernel;
  /** One line per step tried: what loaded, and why the others did not. */
  readonly notes: readonly string[];
}

type Step = (options: KernelOptions, notes: string[]) => Kernel | Promise<Kernel>;

// Each kernel's module loads only when it is tried.
const STEPS: Record<Exclude<KernelChoice, 'auto'>, Step> = {
  native: async (options) => (await import('./kernels/native.js')).nativeKernel(options),
  tfjs: async ({ tfjsBackend }, notes) => (await import('./kernels/tfjs.js')).loadTfjsKernel(notes, tfjsBackend),
  reference: async () => (await import('./kernels/reference.js')).referenceKernel,
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
