/**
 * The library's checks of one option, read off its table entry: a wrong type
 * is a TypeError and a value out of range a RangeError, each naming the
 * option (shared/validate.ts), and an absent option takes the table's default.
 */
import { boolean, integer, number, oneOf, string, stringList } from '../validate.js';
import type { OptionSpec } from './spec.js';

const pathOf = (spec: OptionSpec, path?: string): string => path ?? spec.name ?? spec.flag ?? '';

/** A number option's value checked against its kind and range. */
export function checkNumber(spec: OptionSpec, value: unknown, path?: string): number {
  const name = pathOf(spec, path);
  const min = spec.min ?? -Number.MAX_VALUE;
  if (spec.kind === 'integer' || spec.kind === 'bytes') return integer(name, value, min, spec.max ?? Number.MAX_SAFE_INTEGER);
  return number(name, value, min, spec.max ?? Number.MAX_VALUE);
}

function fallback<T>(spec: OptionSpec, check: (v: unknown) => T): T {
  if (spec.default === undefined) throw new Error(`the option table gives ${pathOf(spec)} no default`);
  return check(spec.default);
}

/** A number option, or its default. */
export const num = (spec: OptionSpec, value: unknown, path?: string): number =>
  value === undefined ? fallback(spec, (d) => d as number) : checkNumber(spec, value, path);

/** A number option, or null when it is not given (its default is computed later). */
export const maybeNum = (spec: OptionSpec, value: unknown, path?: string): number | null => (value === undefined ? null : checkNumber(spec, value, path));

/** Seconds, or null (never) where the option allows it; its default when not given. */
export const secondsOrNever = (spec: OptionSpec, value: unknown, path?: string): number | null =>
  value === null && spec.nullable === true ? null : num(spec, value, path);

/** One of the option's choices, or its default. */
export function choice<T extends string>(spec: OptionSpec & { readonly choices: readonly T[] }, value: unknown, path?: string): T {
  return value === undefined ? fallback(spec, (d) => d as T) : oneOf(pathOf(spec, path), value, spec.choices);
}

/** One of the option's choices, or null when it is not given. */
export const maybeChoice = <T extends string>(spec: OptionSpec & { readonly choices: readonly T[] }, value: unknown, path?: string): T | null =>
  value === undefined ? null : oneOf(pathOf(spec, path), value, spec.choices);

/** A non-empty string, or its default. */
export const str = (spec: OptionSpec, value: unknown, path?: string): string =>
  value === undefined ? fallback(spec, (d) => d as string) : string(pathOf(spec, path), value);

export const maybeStr = (spec: OptionSpec, value: unknown, path?: string): string | null => (value === undefined ? null : string(pathOf(spec, path), value));

export const bool = (spec: OptionSpec, value: unknown, path?: string): boolean =>
  value === undefined ? fallback(spec, (d) => d as boolean) : boolean(pathOf(spec, path), value);

export const maybeList = (spec: OptionSpec, value: unknown, path?: string): readonly string[] | null =>
  value === undefined ? null : stringList(pathOf(spec, path), value);
