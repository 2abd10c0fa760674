/**
 * Data cache sizes, for blocking. Sources in order: Linux sysfs, then the
 * native addon (glibc's sysconf, which reads CPUID and works in VMs that hide
 * sysfs cache entries), then conservative defaults.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface CacheSizes {
  readonly l1d: number;
  readonly l2: number;
  readonly source: 'sysfs' | 'cpuid' | 'default';
}

export const DEFAULT_CACHES: CacheSizes = { l1d: 32 * 1024, l2: 512 * 1024, source: 'default' };

function parseSize(text: string): number {
  const match = /^(\d+)\s*([KMG]?)/i.exec(text.trim());
  if (!match) return 0;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(match[1]) * unit;
}

export function sysfsCaches(root = '/sys/devices/system/cpu/cpu0/cache'): CacheSizes | null {
  try {
    let l1d = 0;
    let l2 = 0;
    for (const entry of readdirSync(root).filter((e) => e.startsWith('index'))) {
      const read = (name: string) => readFileSync(`${root}/${entry}/${name}`, 'utf8').trim();
      const level = read('level');
      const type = read('type');
      if (level === '1' && type !== 'Instruction') l1d = parseSize(read('size'));
      if (level === '2') l2 = parseSize(read('size'));
    }
    return l1d > 0 && l2 > 0 ? { l1d, l2, source: 'sysfs' } : null;
  } catch {
    return null;
  }
}

export function cacheSizes(cpuid: { l1d: number; l2: number } | null): CacheSizes {
  const fromSysfs = sysfsCaches();
  if (fromSysfs) return fromSysfs;
  if (cpuid && cpuid.l1d > 0 && cpuid.l2 > 0) return { l1d: cpuid.l1d, l2: cpuid.l2, source: 'cpuid' };
  return DEFAULT_CACHES;
}
