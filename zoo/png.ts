/**
 * heatmap.png: heatmap.svg rasterized by resvg at twice its size, with the
 * DejaVu fonts of the npm package `dejavu-fonts-ttf` loaded explicitly and no
 * system fonts, so labels render the same on every machine, fonts installed
 * or not.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ResvgRenderOptions } from '@resvg/resvg-js';

const require = createRequire(import.meta.url);

/** The TrueType files the PNG's text is drawn with. */
export function fontFiles(): string[] {
  const ttf = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  return ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((name) => join(ttf, name));
}

/** Pixels per SVG unit in heatmap.png. */
export const PNG_SCALE = 2;

export interface Raster {
  readonly png: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** RGBA, row-major. */
  readonly pixels: Uint8Array;
}

/** Renders an SVG to PNG; `fonts: false` loads no font at all (the tests use it to see that the text is drawn). */
export async function rasterize(svg: string, options: { readonly fonts?: boolean; readonly scale?: number } = {}): Promise<Raster> {
  // A native module: loaded only when a PNG is drawn.
  const { Resvg } = (await import('@resvg/resvg-js')).default;
  const render: ResvgRenderOptions = {
    background: 'white',
    fitTo: { mode: 'zoom', value: options.scale ?? PNG_SCALE },
    font: {
      fontFiles: options.fonts === false ? [] : fontFiles(),
      loadSystemFonts: false,
      defaultFontFamily: 'DejaVu Sans',
      sansSerifFamily: 'DejaVu Sans',
    },
  };
  const image = new Resvg(svg, render).render();
  return { png: new Uint8Array(image.asPng()), width: image.width, height: image.height, pixels: new Uint8Array(image.pixels) };
}
