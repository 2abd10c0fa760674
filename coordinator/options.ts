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
