/**
 * A real headless browser for the report.html tests: the system's chromium
 * (provisioned by test/setup, Debian package `chromium`), driven by
 * playwright-core, which never downloads a browser. As root (CI containers)
 * chromium's sandbox cannot start, so it runs with --no-sandbox there; every
 * step is bounded in time.
 */
import type { Browser } from 'playwright-core';
import { locateTool } from '../setup/tools.js';

export const BROWSER_TIMEOUT_MS = 60_000;

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const root = process.getuid?.() === 0;
  return chromium.launch({
    executablePath: locateTool('chromium'),
    headless: true,
    timeout: BROWSER_TIMEOUT_MS,
    args: [
      ...(root ? ['--no-sandbox'] : []),
      // Small /dev/shm in containers: use /tmp instead. No GPU here.
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--no-first-run',
      '--disable-extensions',
      '--disable-component-update',
      '--disable-background-networking',
    ],
  });
}

/** A PNG's pixels, decoded by resvg (the project's own rasterizer): the PNG drawn as an SVG image at its own size. */
export async function decodePng(png: Uint8Array): Promise<{ width: number; height: number; pixels: Uint8Array }> {
  const { width, height } = pngSize(png);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><image width="${width}" height="${height}" href="data:image/png;base64,${Buffer.from(png).toString('base64')}"/></svg>`;
  const { Resvg } = (await import('@resvg/resvg-js')).default;
  const image = new Resvg(svg, { font: { loadSystemFonts: false } }).render();
  return { width: image.width, height: image.height, pixels: new Uint8Array(image.pixels) };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR; throws unless `png` starts with the PNG signature and an IHDR chunk. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (!PNG_SIGNATURE.every((b, i) => view[i] === b) || view.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG');
  return { width: view.readUInt32BE(16), height: view.readUInt32BE(20) };
}

/** Distinct RGBA colours, and the share of pixels that are not the most common colour. */
export function pixelStats(pixels: Uint8Array): { colours: number; nonBackground: number } {
  const counts = new Map<number, number>();
  const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  for (let i = 0; i + 3 < pixels.length; i += 4) {
    const c = view.getUint32(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const top = Math.max(...counts.values());
  const total = pixels.length / 4;
  return { colours: counts.size, nonBackground: (total - top) / total };
}

/** Pixels that differ between two same-sized RGBA images. */
export function pixelDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error('images differ in size');
  let n = 0;
  for (let i = 0; i < a.length; i += 4) if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2] || a[i + 3] !== b[i + 3]) n++;
  return n;
}
