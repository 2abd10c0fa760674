/**
 * Option checks at the library's edge, in piscina's manner: a wrong type is a
 * TypeError and a value out of range a RangeError, each naming the option
 * as `options.<path>` (OptionTypeError and OptionRangeError, which the CLI
 * turns into exit 2 naming the flag).
 */
import { OptionRangeError, OptionTypeError } from './errors.js';

type Path = string;

const shown = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' && v !== null ? Object.prototype.toString.call(v) : String(v);

export function isObject(path: Path, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OptionTypeError(path, `must be an object, got ${shown(value)}`);
  return value as Record<string, unknown>;
}

/** Refuses keys the options object does not define (a misspelt option would otherwise be ignored). */
export function knownKeys(path: Path, value: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new OptionTypeError(path, `has no option ${JSON.stringify(key)}; the options are ${keys.join(', ')}`);
  }
}

export function integer(path: Path, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new OptionTypeError(path, `must be an integer, got ${shown(value)}`);
  if (value < min || value > max) {
    throw new OptionRangeError(path, `must be ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got ${value}`);
  }
  return value;
}

export function number(path: Path, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new OptionTypeError(path, `must be a number, got ${shown(value)}`);
  if (value < min || value > max) throw new OptionRangeError(path, `must be from ${min} to ${max}, got ${value}`);
  return value;
}

export function string(path: Path, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new OptionTypeError(path, `must be a non-empty string, got ${shown(value)}`);
  return value;
}

export function boolean(path: Path, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new OptionTypeError(path, `must be a boolean, got ${shown(value)}`);
  return value;
}

export function oneOf<T extends string>(path: Path, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string') throw new OptionTypeError(path, `must be one of ${choices.join(', ')}, got ${shown(value)}`);
  if (!(choices as readonly string[]).includes(value)) throw new OptionRangeError(path, `must be one of ${choices.join(', ')}, got ${shown(value)}`);
  return value as T;
}

export function stringList(path: Path, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) {
    throw new OptionTypeError(path, `must be an array of non-empty strings, got ${shown(value)}`);
  }
  if (value.length === 0) throw new OptionRangeError(path, `must name at least one layer`);
  return value as string[];
}

export function func<T>(path: Path, value: unknown): T {
  if (typeof value !== 'function') throw new OptionTypeError(path, `must be a function, got ${shown(value)}`);
  return value as T;
}

/** `check(value)` when the option is given (not undefined), else the default. */
export function optional<T>(value: unknown, check: (v: unknown) => T, fallback: T): T {
  return value === undefined ? fallback : check(value);
}
