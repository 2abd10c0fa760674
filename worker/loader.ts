/**
 * Kernel loader: an ordered fallback chain, native -> tfjs -> reference.
 * Every step that fails records why; a kernel asked for by name that cannot
 * load is an error, never a silent fallback.
 */
import { KernelUnavailableError } from '../shared/errors.js';
import type { Kernel } from './kernel.js';
import { nativeKernel } from './kernels/native.js';
import { referenceKernel } from './kernels/reference.js';
import { loadTfjsKernel } from './kernels/tfjs.js';

export const KERNEL_CHOICES = ['auto', 'native', 'tfjs', 'reference'] as const;
export type KernelChoice = (typeof KERNEL_CHOICES)[number];

export interface LoadedKernel {
  readonly kernel: Kernel;
  /** One line per step tried: what loaded, and why the others did not. */
  readonly notes: readonly string[];
}

type Step = (notes: string[]) => Kernel | Promise<Kernel>;

const STEPS: Record<Exclude<KernelChoice, 'auto'>, Step> = {
  native: () => nativeKernel(),
  tfjs: (notes) => loadTfjsKernel(notes),
  reference: () => referenceKernel,
};

const CHAIN: readonly Exclude<KernelChoice, 'auto'>[] = ['native', 'tfjs', 'reference'];

const describe = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

export async function loadKernel(choice: KernelChoice): Promise<LoadedKernel> {
  const notes: string[] = [];
  const chain = choice === 'auto' ? CHAIN : [choice];
  for (const name of chain) {
    const stepNotes: string[] = [];
    try {
      const kernel = await STEPS[name](stepNotes);
      notes.push(...stepNotes, `${name}: loaded as ${kernel.name}`);
      return { kernel, notes };
    } catch (err) {
      notes.push(...stepNotes, `${name}: unavailable (${describe(err)})`);
      if (choice !== 'auto') throw new KernelUnavailableError(`--kernel ${name} cannot be loaded: ${notes.join('; ')}`, { cause: err });
    }
  }
  throw new KernelUnavailableError(`no kernel could be loaded: ${notes.join('; ')}`);
}
