/** Byte counts in messages: exact, with a readable size beside, and sizes a size flag takes (--memory, --cache). */
const MIB = 2 ** 20;
const KIB = 2 ** 10;

/** Bytes, and in MiB or KiB when that reads better: 17301504 bytes (16.5MiB). */
export function describeBytes(n: number): string {
  const [unit, size] = n >= MIB ? ['MiB', MIB] : n >= KIB ? ['KiB', KIB] : [null, 1];
  return unit === null ? `${n} bytes` : `${n} bytes (${Number((n / size).toFixed(1))}${unit})`;
}

/** A size for a flag, rounded up to whole MiB (KiB below 1 MiB): at least `n` bytes. */
export function flagSize(n: number): string {
  return n >= MIB ? `${Math.ceil(n / MIB)}MiB` : `${Math.ceil(n / KIB)}KiB`;
}
