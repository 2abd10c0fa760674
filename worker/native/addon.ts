/**
 * The one loader of the native addon (built from ./src by ./build.mjs). The
 * addon is looked for under the package root, in an ordered list of build
 * locations; the first that loads wins, and if none does, one error names
 * every place tried and the fix. Each thread loads it once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelUnavailableError } from '../../shared/errors.js';
import type { StandardizeLoops } from '../../shared/formats/index.js';
import type { TileInput } from '../kernel.js';

export type Isa = 'avx512' | 'avx2' | 'scalar';

export interface AddonInfo {
  /** The ISAs this CPU runs, best first. */
  readonly isas: Isa[];
  readonly best: Isa;
  /** Cache sizes in bytes from glibc's sysconf (CPUID); 0 where unknown. */
  readonly l1d: number;
  readonly l2: number;
  readonly l3: number;
}

export interface TileKernelOptions {
  readonly isa: Isa | 'auto';
  /** G columns packed and swept at a time. */
  readonly gChunk: number;
}

/**
 * The tile kernel of one ISA and G chunk. `out` receives rowBest f64[fCount],
 * colBest f64[gCount], rowArg u32[fCount], colArg u32[gCount] (global
 * indices), the layout of a TileResult's buffer.
 */
export interface NativeTileKernel {
  (input: TileInput, out: ArrayBuffer): void;
  /** What the requested ISA resolved to ('auto' gives the best one). */
  readonly isa: Isa;
  readonly gChunk: number;
}

export interface NativeAddon {
  info(): AddonInfo;
  adviseHugePages(view: ArrayBufferView): boolean;
  standardizeAccumulate: StandardizeLoops['accumulate'];
  standardizeWrite: StandardizeLoops['write'];
  /** Throws (RangeError, or Error for an ISA this CPU lacks) here, not on the first tile. */
  tileKernel(options: TileKernelOptions): NativeTileKernel;
}

export interface AddonOptions {
  /** The addon's path, replacing the list of build locations (relative to the working directory). */
  readonly addon?: string;
}

const PACKAGE = 'neurocorr';
const BUILDS = ['Release', 'Debug'].map((build) => join('worker', 'native', 'build', build, 'neurocorr.node'));

/** The first folder above the file `from` whose package.json is this package's (from dist/ or from the sources alike). */
export function packageRoot(from: string | URL = import.meta.url): string {
  const start = typeof from === 'string' && !from.startsWith('file:') ? resolve(from) : fileURLToPath(from);
  for (let dir = dirname(start); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && packageName(manifest) === PACKAGE) return dir;
    if (dirname(dir) === dir) throw new KernelUnavailableError(`no folder above ${start} has a package.json named ${PACKAGE}`);
  }
}

function packageName(manifest: string): unknown {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name;
  } catch {
    return undefined;
  }
}

/** Where the addon is looked for, in order: the Release and Debug builds under the package root, or only `options.addon`. */
export function addonCandidates(options: AddonOptions = {}, root?: string): string[] {
  if (options.addon) return [resolve(options.addon)];
  const base = root ?? packageRoot();
  return BUILDS.map((build) => join(base, build));
}

const reason = (err: unknown): string =>
  (err as { code?: unknown }).code === 'MODULE_NOT_FOUND' ? 'absent' : err instanceof Error ? err.message.split('\n')[0]! : String(err);

/** Loads the first candidate that loads, uncached; else one error naming every candidate and the fix. */
export function requireAddon(candidates: readonly string[], explicit = false): NativeAddon {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return require(path) as NativeAddon;
    } catch (err) {
      failures.push(`${path} (${reason(err)})`);
    }
  }
  const fix = explicit ? 'point the addon path at a built neurocorr.node' : 'run npm rebuild (or npm ci) in the package folder to build it';
  throw new KernelUnavailableError(`native addon not built or not loadable: tried ${failures.join(', ')}. Fix: ${fix}`);
}

// Per thread (module state is per thread): the addon, or why it did not load, by addon path ('' for the default list).
const loaded = new Map<string, NativeAddon | KernelUnavailableError>();

/** The addon, loaded once per thread and path; throws KernelUnavailableError naming every place tried. */
export function loadAddon(options: AddonOptions = {}): NativeAddon {
  const key = options.addon ?? '';
  let entry = loaded.get(key);
  if (entry === undefined) {
    try {
      entry = requireAddon(addonCandidates(options), key !== '');
    } catch (err) {
      entry = err instanceof KernelUnavailableError ? err : new KernelUnavailableError(String(err), { cause: err });
    }
    loaded.set(key, entry);
  }
  if (entry instanceof Error) throw entry;
  return entry;
}
