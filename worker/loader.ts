/**
 * Kernel loader: an ordered fallback chain, native -> tfjs -> reference.
 * Every step that fails records why; a kernel asked for by name that cannot
 * load is an error, never a silent fallback.
 */
import { createRequire } from 'node:module';
import { KernelUnavailableError } from '../shared/errors.js';
import type { Kernel } from './kernel.js';
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

const require = createRequire(import.meta.url);

function loadNative(): Kernel {
  // The native addon arrives with its own module; until it is built this step reports why it is absent.
  const addon = require('../build/Release/neurocorr.node') as unknown;
  void addon;
  throw new Error('native addon found but no binding is wired');
}

const STEPS: Record<Exclude<KernelChoice, 'auto'>, Step> = {
  native: () => loadNative(),
  tfjs: (notes) => loadTfjsKernel(notes),
  reference: () => referenceKernel,
};

const CHAIN: readonly Exclude<KernelChoice, 'auto'>[] = ['native', 'tfjs', 'reference'];

const describe = (err: unknown): string => {
  const code = (err as { code?: unknown }).code;
  if (code === 'MODULE_NOT_FOUND') return 'addon not built (run npm ci / npm rebuild)';
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
};

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
