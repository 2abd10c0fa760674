/**
 * Text widths for vega's layout, from the DejaVu Sans fonts the PNG is drawn
 * with. Without a canvas, vega guesses 0.8 em per character, which cuts
 * model names short and leaves gaps around rotated labels; vega lets a
 * program supply `textMetrics.width` instead (as vl-convert does), and this
 * is that function: advance widths read from the fonts' hmtx table through
 * their Unicode cmap (format 4), no kerning.
 */
import { readFileSync } from 'node:fs';
import { InternalError } from '../shared/errors.js';
import { fontFiles } from './png.js';

/** Advance widths of one font, in ems. */
export interface FontWidths {
  readonly advance: (codePoint: number) => number;
}

function tables(font: Buffer): Map<string, number> {
  const out = new Map<string, number>();
  const count = font.readUInt16BE(4);
  for (let i = 0; i < count; i++) {
    const record = 12 + 16 * i;
    out.set(font.toString('latin1', record, record + 4), font.readUInt32BE(record + 8));
  }
  return out;
}

/** The glyph of a BMP code point through a format 4 cmap subtable at `at`, or 0. */
function glyphFormat4(font: Buffer, at: number, code: number): number {
  const segments = font.readUInt16BE(at + 6) / 2;
  const ends = at + 14;
  const starts = ends + 2 * segments + 2;
  const deltas = starts + 2 * segments;
  const ranges = deltas + 2 * segments;
  for (let i = 0; i < segments; i++) {
    if (code > font.readUInt16BE(ends + 2 * i)) continue;
    const start = font.readUInt16BE(starts + 2 * i);
    if (code < start) return 0;
    const delta = font.readInt16BE(deltas + 2 * i);
    const range = font.readUInt16BE(ranges + 2 * i);
    if (range === 0) return (code + delta) & 0xffff;
    const glyph = font.readUInt16BE(ranges + 2 * i + range + 2 * (code - start));
    return glyph === 0 ? 0 : (glyph + delta) & 0xffff;
  }
  return 0;
}

/** Reads a TrueType font's advance widths (Windows Unicode BMP cmap). */
export function fontWidths(file: string): FontWidths {
  const font = readFileSync(file);
  const t = tables(font);
  const [head, hhea, hmtx, cmap] = ['head', 'hhea', 'hmtx', 'cmap'].map((tag) => t.get(tag));
  if (head === undefined || hhea === undefined || hmtx === undefined || cmap === undefined)
    throw new InternalError(`${file}: not a TrueType font with head, hhea, hmtx and cmap`);
  const unitsPerEm = font.readUInt16BE(head + 18);
  const metrics = font.readUInt16BE(hhea + 34);
  let subtable: number | undefined;
  for (let i = 0; i < font.readUInt16BE(cmap + 2); i++) {
    const record = cmap + 4 + 8 * i;
    const [platform, encoding] = [font.readUInt16BE(record), font.readUInt16BE(record + 2)];
    const at = cmap + font.readUInt32BE(record + 4);
    if (((platform === 3 && encoding === 1) || (platform === 0 && encoding === 3)) && font.readUInt16BE(at) === 4) subtable = at;
  }
  if (subtable === undefined) throw new InternalError(`${file}: no Unicode BMP cmap (format 4)`);
  const cache = new Map<number, number>();
  const advance = (codePoint: number): number => {
    let width = cache.get(codePoint);
    if (width === undefined) {
      const glyph = codePoint > 0xffff ? 0 : glyphFormat4(font, subtable, codePoint);
      width = font.readUInt16BE(hmtx + 4 * Math.min(glyph, metrics - 1)) / unitsPerEm;
      cache.set(codePoint, width);
    }
    return width;
  };
  return { advance };
}

let fonts: { regular: FontWidths; bold: FontWidths } | undefined;

/** Width in pixels of `text` at `size` px in DejaVu Sans (bold where asked). */
export function textWidth(text: string, size: number, bold: boolean): number {
  fonts ??= (() => {
    const [regular, boldFile] = fontFiles();
    return { regular: fontWidths(regular!), bold: fontWidths(boldFile!) };
  })();
  const font = bold ? fonts.bold : fonts.regular;
  let ems = 0;
  for (const ch of text) ems += font.advance(ch.codePointAt(0)!);
  return ems * size;
}

/** What vega hands `textMetrics.width`: a text mark's item. */
export interface TextItem {
  readonly fontSize?: number | null;
  readonly fontWeight?: string | number | null;
  readonly limit?: number | null;
}

const isBold = (weight: string | number | null | undefined): boolean =>
  weight === 'bold' || weight === 'bolder' || (typeof weight === 'number' && weight >= 600) || (typeof weight === 'string' && Number(weight) >= 600);

/** vega's `textMetrics.width`: a line's width as drawn, at most the item's `limit` (vega cuts a longer line and adds an ellipsis). */
export function vegaTextWidth(item: TextItem, text: unknown): number {
  const line = text === null || text === undefined ? '' : String(text).trim();
  const size = item.fontSize ?? 11;
  if (!(size > 0) || line === '') return 0;
  const width = textWidth(line, size, isBold(item.fontWeight));
  const limit = item.limit ?? 0;
  return limit > 0 && width >= limit ? limit : width;
}
