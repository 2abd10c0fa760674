/** Parsers for CLI option values: each throws UsageError (exit 2) naming the flag. */
import { UsageError } from '../shared/errors.js';

export function integerOption(flag: string, min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(`${flag} ${value}: expected an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
    }
    return n;
  };
}

/** `--spatial`: a side S from 1 to `max`, or `min` (when `min` is allowed). */
export function spatialOption(max: number, min: boolean): (value: string) => number | 'min' {
  const side = integerOption('--spatial', 1, max);
  return (value: string) => {
    if (min && value.trim() === 'min') return 'min';
    try {
      return side(value);
    } catch {
      throw new UsageError(`--spatial ${value}: expected an integer side from 1 to ${max}${min ? ', or min' : ''}`);
    }
  };
}

/** `synth --features`: FROM:TO, or none. */
export function featuresOption(value: string): { from: number; to: number } | 'none' {
  if (value.trim() === 'none') return 'none';
  const match = /^(\d+):(\d+)$/.exec(value.trim());
  if (match === null) throw new UsageError(`--features ${value}: expected FROM:TO (for example 0:10) or none`);
  return { from: Number(match[1]), to: Number(match[2]) };
}

/** A name or a path: an empty one is refused here, for commands with no library options object to check it (jobs). */
export function nonEmpty(flag: string): (value: string) => string {
  return (value: string) => {
    if (value === '') throw new UsageError(`${flag} must be a non-empty string, got ""`);
    return value;
  };
}

export function listOption(flag: string): (value: string) => string[] {
  return (value: string) => {
    const names = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (names.length === 0) throw new UsageError(`${flag} needs a comma-separated list of layer names`);
    return names;
  };
}

export function numberOption(flag: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} ${value}: expected a number from ${min} to ${max}`);
    return n;
  };
}

/** Seconds from `min` to `max`, or `none` (null). */
export function durationOrNone(flag: string, min: number, max: number): (value: string) => number | null {
  const seconds = numberOption(flag, min, max);
  return (value: string) => {
    if (value.trim() === 'none') return null;
    try {
      return seconds(value);
    } catch {
      throw new UsageError(`${flag} ${value}: expected seconds from ${min} to ${max}, or none`);
    }
  };
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Bytes, or a size with a unit: 32MiB, 2GiB, 500MB, 1.5G. */
export function sizeOption(flag: string, min = 0): (value: string) => number {
  return (value: string) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
    const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
    const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
    if (!(bytes >= min) || !Number.isSafeInteger(bytes))
      throw new UsageError(`${flag} ${value}: expected bytes (at least ${min}) or a size such as 32MiB, 2GiB, 500MB`);
    return bytes;
  };
}
