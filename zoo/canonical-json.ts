/**
 * Canonical JSON: object keys sorted (code units), no whitespace, numbers as
 * JSON.stringify writes them. Equal values give equal text, so the text can
 * be a key (the options key) or be hashed (a shard set's manifest).
 */
import { InternalError } from '../shared/errors.js';

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, at: string): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw notJson(at, String(value));
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v, i) => write(v, `${at}[${i}]`)).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, `${at}.${k}`)}`).join(',')}}`;
  }
  throw notJson(at, typeof value);
}

const notJson = (at: string, what: string): InternalError => new InternalError(`canonical JSON: ${at} is ${what}, which JSON cannot hold`);
