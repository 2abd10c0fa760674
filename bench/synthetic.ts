/** Random models for benchmarks: in memory for kernel timing (values do not change a kernel's speed), or as .npy sets. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '#dist/shared/core/index.js';
import { encodeNpy } from '#dist/shared/formats/index.js';

export function randomModel(n: number, m: number, seed: number): Model {
  const z = new Float32Array(new SharedArrayBuffer(n * m * 4));
  let s = seed >>> 0 || 1;
  for (let i = 0; i < z.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    z[i] = (s >>> 0) / 2147483648 - 1;
  }
  return {
    path: `random-${n}x${m}`,
    probes: m,
    m,
    n,
    layers: [{ name: 'l0', depth: 0, source: 'memory', shape: [n], start: 0, count: n, total: n, constant: 0 }],
    z,
    constant: new Uint8Array(n),
    ids: null,
    fingerprint: null,
  };
}

/** Four .npy layers of non-negative, ReLU-like activations (deterministic from the seed); skipped if already written. */
export function writeModel(dir: string, n: number, m: number, seed: number): void {
  if (existsSync(join(dir, 'done'))) return;
  mkdirSync(dir, { recursive: true });
  const layers = 4;
  let s = seed;
  for (let l = 0; l < layers; l++) {
    const count = Math.floor(n / layers) + (l < n % layers ? 1 : 0);
    const data = new Float32Array(m * count);
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[i] = Math.max(0, s / 2147483648 - 1.2) + (s & 0xff) / 4096;
    }
    writeFileSync(join(dir, `layer${l}.npy`), encodeNpy(data, [m, count]));
  }
  writeFileSync(join(dir, 'done'), '');
}
