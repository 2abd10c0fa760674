/** Figure 1 of the report: test images before and after Algorithm 1's attack, with Net1's predictions, as SVG rasterized to PNG by the zoo's renderer. */
import { writeFileSync } from 'node:fs';
import { rasterize } from '#dist/zoo/png.js';
import { CLASS_NAMES, SIDE, type DatasetName } from './data.js';
import type { RunResult } from './run.js';

const PX = 3;
const GAP = 10;
const LABEL = 16;

function image(values: readonly number[], x0: number, y0: number): string {
  const rects: string[] = [`<rect x="${x0}" y="${y0}" width="${SIDE * PX}" height="${SIDE * PX}" fill="#000"/>`];
  for (let i = 0; i < values.length; i++) {
    const v = Math.round(Math.min(1, Math.max(0, values[i]!)) * 255);
    if (v < 4) continue;
    rects.push(`<rect x="${x0 + (i % SIDE) * PX}" y="${y0 + Math.floor(i / SIDE) * PX}" width="${PX}" height="${PX}" fill="rgb(${v},${v},${v})"/>`);
  }
  return rects.join('');
}

export async function writeFigure(runs: readonly RunResult[], file: string): Promise<void> {
  const cell = SIDE * PX;
  const cols = Math.max(...runs.map((r) => r.examples.clean.length));
  const width = 110 + cols * (cell + GAP);
  const rowH = cell + LABEL + GAP;
  const parts: string[] = [];
  runs.forEach((r, d) => {
    const names = CLASS_NAMES[r.dataset as DatasetName];
    (['clean', 'attacked'] as const).forEach((kind, k) => {
      const y = 10 + (d * 2 + k) * rowH;
      const title = `${r.dataset === 'mnist' ? 'MNIST' : 'Fashion'}, ${kind === 'clean' ? 'before' : 'after'}`;
      parts.push(`<text x="4" y="${y + cell / 2}" font-size="12" font-family="DejaVu Sans">${title}</text>`);
      r.examples[kind].forEach((values, i) => {
        const x = 110 + i * (cell + GAP);
        parts.push(image(values, x, y));
        const pred = (kind === 'clean' ? r.examples.before : r.examples.after)[i]!;
        const ok = pred === r.examples.labels[i];
        parts.push(`<text x="${x}" y="${y + cell + 12}" font-size="10" font-family="DejaVu Sans" fill="${ok ? '#000' : '#c00'}">${names[pred]}</text>`);
      });
    });
  });
  const height = 10 + runs.length * 2 * rowH;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
  writeFileSync(file, (await rasterize(svg, { scale: 1 })).png);
}
