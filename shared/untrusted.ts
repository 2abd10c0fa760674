/**
 * Text that came over the network (a worker's failure message, its name, a
 * kernel's name) before it is printed, logged or stored: control characters
 * (terminal escapes, carriage returns) and Unicode direction overrides become
 * `?`, runs of whitespace one space, and it is cut to `max` characters.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function untrusted(text: string, max = 600): string {
  const clean = text.replace(UNSAFE, '?').replace(/\s+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}
