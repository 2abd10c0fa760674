/** Which kernel to load and how: plain data, checked at the library's edge, carried to the pool threads in workerData. */
import { isObject, knownKeys, oneOf, optional, string } from '../shared/validate.js';

import { KERNEL_CHOICES, NATIVE_ISAS, TFJS_BACKENDS } from '../shared/options/index.js';

export { KERNEL_CHOICES, NATIVE_ISAS, TFJS_BACKENDS };
export type TfjsBackend = (typeof TFJS_BACKENDS)[number];
export type KernelChoice = (typeof KERNEL_CHOICES)[number];

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
