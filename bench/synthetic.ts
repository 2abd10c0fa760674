/** In-memory random models for kernel timing (values do not change a kernel's speed). */
import type { Model } from '../shared/model.js';

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
