/**
 * The Python literals a .npy header is written in (numpy/lib/format.py reads
 * it with ast.literal_eval): a tokenizer and recursive-descent parser over
 * strings (prefixes, escapes, implicit concatenation), ints, True/False/None,
 * tuples, lists, dicts and sets, in one linear pass. Floats and complex
 * numbers are recognized but not evaluated: no valid header holds one.
 */

export type PyValue =
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'bytes' }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'none' }
  | { readonly kind: 'float' }
  | { readonly kind: 'tuple' | 'list' | 'set'; readonly items: readonly PyValue[] }
  | { readonly kind: 'dict'; readonly entries: readonly (readonly [PyValue, PyValue])[] };

/** A header that is not a Python literal (NumPy's SyntaxError or ValueError). */
export class PySyntaxError extends Error {}

// CPython's tokenizer refuses more than 200 nested brackets.
const MAX_NESTING = 200;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
const DECIMAL = /^(?:0(?:_?0)*|[1-9](?:_?[0-9])*)$/;
const BASED = /^0(?:[xX](?:_?[0-9a-fA-F])+|[oO](?:_?[0-7])+|[bB](?:_?[01])+)$/;
// Written so that no input backtracks more than linearly.
const FLOAT = /^(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.?)(?:[eE][+-]?[0-9](?:_?[0-9])*)?[jJ]?$/;

/**
 * Parses `text` as one Python literal. `longSuffix` accepts Python 2's `3L`
 * ints (NumPy retries headers of format 1.0 and 2.0 without them).
 */
export function parsePyLiteral(text: string, longSuffix: boolean): PyValue {
  let at = 0;
  const fail = (what: string): never => {
    throw new PySyntaxError(`${what} at character ${at}`);
  };

  const skipSpace = (): void => {
    while (at < text.length) {
      const c = text[at]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') at++;
      else if (c === '\\' && (text[at + 1] === '\n' || (text[at + 1] === '\r' && text[at + 2] === '\n'))) at += text[at + 1] === '\n' ? 2 : 3;
      else if (c === '#') while (at < text.length && text[at] !== '\n') at++;
      else return;
    }
  };

  const isIdentChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);

  /** A string literal's body after its prefix; `at` is on the opening quote. */
  const stringBody = (raw: boolean, bytes: boolean): string => {
    const quote = text[at]!;
    const triple = text[at + 1] === quote && text[at + 2] === quote;
    const close = triple ? quote.repeat(3) : quote;
    at += close.length;
    let out = '';
    for (;;) {
      if (at >= text.length) fail('unterminated string');
      const c = text[at]!;
      if (text.startsWith(close, at)) {
        at += close.length;
        return out;
      }
      if ((c === '\n' || c === '\r') && !triple) fail('newline in a string');
      if (bytes && c.charCodeAt(0) > 0x7f) fail('non-ASCII character in bytes');
      if (c !== '\\') {
        out += c;
        at++;
        continue;
      }
      const next = text[at + 1];
      if (next === undefined) fail('unterminated string');
      if (raw) {
        out += c + next;
        at += 2;
      } else {
        out += escape(bytes);
      }
    }
  };

  /** One escape sequence of a non-raw string; `at` is on the backslash. */
  const escape = (bytes: boolean): string => {
    const c = text[at + 1]!;
    at += 2;
    if (c === '\n') return '';
    if (c === '\r') {
      if (text[at] === '\n') at++;
      return '';
    }
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) return simple;
    if (c >= '0' && c <= '7') {
      let digits = c;
      while (digits.length < 3 && text[at]! >= '0' && text[at]! <= '7') digits += text[at++];
      return String.fromCodePoint(Number.parseInt(digits, 8));
    }
    const hex = c === 'x' ? 2 : bytes ? 0 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
    if (hex > 0) {
      const digits = text.slice(at, at + hex);
      if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== hex) fail(`truncated \\${c} escape`);
      const code = Number.parseInt(digits, 16);
      if (code > 0x10ffff) fail('escape out of the Unicode range');
      at += hex;
      return String.fromCodePoint(code);
    }
    // \N{name} needs the Unicode name table; no header NumPy writes uses one.
    if (c === 'N' && !bytes) fail('\\N{...} escape (unsupported)');
    return `\\${c}`;
  };

  /** Strings next to each other are one string, as in Python. */
  const strings = (first: { raw: boolean; bytes: boolean }): PyValue => {
    let prefix: { raw: boolean; bytes: boolean } | null = first;
    let value = '';
    while (prefix !== null) {
      if (prefix.bytes !== first.bytes) fail('bytes and str literals side by side');
      value += stringBody(prefix.raw, prefix.bytes);
      skipSpace();
      prefix = stringPrefix();
    }
    return first.bytes ? { kind: 'bytes' } : { kind: 'str', value };
  };

  /** The prefix of a string literal starting at `at` (consumed), or null (nothing consumed). */
  const stringPrefix = (): { raw: boolean; bytes: boolean } | null => {
    let end = at;
    while (end < text.length && end - at < 3 && /[rRbBuU]/.test(text[end]!)) end++;
    const quote = text[end];
    if (quote !== "'" && quote !== '"') return null;
    const prefix = text.slice(at, end).toLowerCase();
    if (!['', 'r', 'u', 'b', 'br', 'rb'].includes(prefix)) return null;
    at = end;
    return { raw: prefix.includes('r'), bytes: prefix.includes('b') };
  };

  const number = (): PyValue => {
    const start = at;
    // A sign continues the token only in an exponent: 1e-5, not 0x1e-5.
    const based = text[at] === '0' && /[xXoObB]/.test(text[at + 1] ?? '');
    const inToken = (c: string): boolean => isIdentChar(c) || c === '.' || ((c === '+' || c === '-') && !based && /[eE]/.test(text[at - 1]!));
    while (at < text.length && inToken(text[at]!)) at++;
    let token = text.slice(start, at);
    if (longSuffix && token.endsWith('L')) token = token.slice(0, -1);
    if (DECIMAL.test(token) || BASED.test(token)) return { kind: 'int', value: Number(token.replaceAll('_', '')) };
    if (FLOAT.test(token) && /[.eEjJ]/.test(token)) return { kind: 'float' };
    return fail(`invalid number ${JSON.stringify(token.slice(0, 40))}`);
  };

  /** Items up to `close`, comma-separated, with an optional trailing comma; reports whether any comma was seen. */
  const sequence = (close: string, item: () => void): boolean => {
    let comma = false;
    for (;;) {
      skipSpace();
      if (text[at] === close) {
        at++;
        return comma;
      }
      item();
      skipSpace();
      if (text[at] === ',') {
        at++;
        comma = true;
      } else if (text[at] !== close) fail(`expected ',' or '${close}'`);
    }
  };

  const value = (depth: number): PyValue => {
    if (depth > MAX_NESTING) fail('too many nested brackets');
    skipSpace();
    const c = text[at];
    if (c === undefined) return fail('unexpected end');
    const prefix = stringPrefix();
    if (prefix !== null) return strings(prefix);
    if (c === '(' || c === '[') {
      at++;
      const items: PyValue[] = [];
      const comma = sequence(c === '(' ? ')' : ']', () => items.push(value(depth + 1)));
      if (c === '[') return { kind: 'list', items };
      // (x) is x; (), (x,) and (x, y) are tuples.
      return items.length === 1 && !comma ? items[0]! : { kind: 'tuple', items };
    }
    if (c === '{') {
      at++;
      const entries: [PyValue, PyValue][] = [];
      const items: PyValue[] = [];
      sequence('}', () => {
        const key = value(depth + 1);
        skipSpace();
        if (text[at] === ':' && items.length === 0) {
          at++;
          entries.push([key, value(depth + 1)]);
        } else if (entries.length === 0) items.push(key);
        else fail("expected ':'");
      });
      return items.length > 0 ? { kind: 'set', items } : { kind: 'dict', entries };
    }
    if (c === '-' || c === '+') {
      at++;
      skipSpace();
      if (!/[0-9.]/.test(text[at] ?? '')) fail('a sign applies to a number only');
      const n = number();
      return n.kind === 'int' && c === '-' ? { kind: 'int', value: -n.value } : n;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[at + 1] ?? ''))) return number();
    if (/[A-Za-z_]/.test(c)) {
      const start = at;
      while (isIdentChar(text[at])) at++;
      const name = text.slice(start, at);
      if (name === 'True' || name === 'False') return { kind: 'bool', value: name === 'True' };
      if (name === 'None') return { kind: 'none' };
      at = start;
      return fail(`name ${JSON.stringify(name.slice(0, 40))} is not a literal`);
    }
    return fail(`unexpected ${JSON.stringify(c)}`);
  };

  if (text.includes('\0')) fail('null byte');
  const result = value(0);
  skipSpace();
  if (at < text.length) fail('text after the literal');
  return result;
}
