/**
 * The probe set: real photographs from Debian packages, as one folder of
 * same-size PNGs in a fixed order, so that every model sees the same images
 * and `neurocorr extract`'s own `--size` and `--preprocess` apply to all alike.
 *
 * - tuxpaint-stamps-default: object photographs on transparent backgrounds
 *   (animals, food, plants, household things, vehicles, ...). Left out:
 *   `symbols/` (letters, coins, signs), road signs, cartoons, mirrored
 *   duplicates (`*_mirror.png`), and stamps that look drawn rather than
 *   photographed: fewer than 0.12 distinct colours per opaque pixel (at most
 *   96 px a side, colours at 6 bits per channel; flat clip art has few), or
 *   under 500 opaque pixels (an outline, a spark). Each is flattened on mid
 *   grey, letterboxed into the square.
 * - scene photographs shipped as example or test data (darknet, scikit-learn,
 *   scikit-image), centre-cropped to the square.
 *
 * The candidates are put in a seeded pseudo-random order (by a hash of their
 * path), so that the first K probes (`--probes K`) are a random sample of the
 * pool, not one category; the first `count` are written.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { buildOnce, CACHE, StudyError } from './common.js';
import type { FetchedDeb } from './fetch.js';

export const PROBE_SIDE = 320;
const GREY = '#7f7f7f';

/** Scene photographs shipped as example data, by package and path inside it. */
const SCENES: Readonly<Record<string, readonly string[]>> = {
  darknet: ['dog.jpg', 'eagle.jpg', 'giraffe.jpg', 'horses.jpg', 'kite.jpg', 'person.jpg'].map((f) => `usr/share/darknet/data/${f}`),
  'python3-sklearn': ['china.jpg', 'flower.jpg'].map((f) => `usr/lib/python3/dist-packages/sklearn/datasets/images/${f}`),
  'python3-skimage': ['astronaut.png', 'chelsea.png', 'coffee.png', 'motorcycle_left.png', 'rocket.jpg'].map(
    (f) => `usr/lib/python3/dist-packages/skimage/data/${f}`,
  ),
};

export interface ProbeSource {
  readonly file: string;
  readonly package: string;
  readonly path: string;
  readonly kind: 'stamp' | 'scene';
}

export interface ProbeSet {
  readonly dir: string;
  readonly count: number;
  /** Usable photographs: stamps kept by the filter, plus scenes. */
  readonly pool: number;
  readonly stamps: number;
  /** Stamps the filter dropped (drawn-looking or near-empty). */
  readonly dropped: number;
  readonly probes: readonly ProbeSource[];
  /** Identifies the folder's contents (which photographs, how drawn): a different key rebuilds it, and everything extracted from it. */
  readonly key: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Distinct colours per opaque pixel, and the opaque pixel count, of a stamp at most 96 px a side. */
async function colourfulness(file: string): Promise<{ ratio: number; opaque: number }> {
  const { data } = await sharp(file).toColourspace('srgb').ensureAlpha().resize(96, 96, { fit: 'inside' }).raw().toBuffer({ resolveWithObject: true });
  const colours = new Set<number>();
  let opaque = 0;
  for (let i = 0; i + 3 < data.length; i += 4) {
    if (data[i + 3]! <= 200) continue;
    opaque++;
    colours.add(((data[i]! >> 2) << 12) | ((data[i + 1]! >> 2) << 6) | (data[i + 2]! >> 2));
  }
  return { ratio: colours.size / Math.max(1, opaque), opaque };
}

async function stampCandidates(tuxpaint: FetchedDeb): Promise<{ keep: ProbeSource[]; dropped: number }> {
  const stamps = join(tuxpaint.root, 'usr', 'share', 'tuxpaint', 'stamps');
  const files = walk(stamps)
    .filter((f) => f.endsWith('.png'))
    .map((f) => relative(stamps, f))
    .filter((p) => !p.startsWith('symbols/') && !/(^|\/)(roadsigns|cartoon)\//.test(p) && !p.endsWith('_mirror.png'))
    .sort();
  const keep: ProbeSource[] = [];
  for (const p of files) {
    const { ratio, opaque } = await colourfulness(join(stamps, p));
    if (ratio >= 0.12 && opaque >= 500) keep.push({ file: join(stamps, p), package: tuxpaint.name, path: `usr/share/tuxpaint/stamps/${p}`, kind: 'stamp' });
  }
  return { keep, dropped: files.length - keep.length };
}

const orderKey = (s: ProbeSource) => createHash('sha256').update(`neurocorr-study\0${s.package}\0${s.path}`).digest('hex');

/** Builds (once) the folder of the first `count` probes; returns it with where each came from. */
export async function buildProbes(debs: readonly FetchedDeb[], count: number): Promise<ProbeSet> {
  const dir = join(CACHE, `probes-${count}`);
  const byName = new Map(debs.map((d) => [d.name, d]));
  const tuxpaint = byName.get('tuxpaint-stamps-default');
  if (tuxpaint === undefined) throw new StudyError('tuxpaint-stamps-default was not fetched');
  const { keep, dropped } = await stampCandidates(tuxpaint);
  const scenes: ProbeSource[] = Object.entries(SCENES).flatMap(([pkg, paths]) => {
    const deb = byName.get(pkg);
    if (deb === undefined) return [];
    return paths
      .filter((p) => statSync(join(deb.root, p), { throwIfNoEntry: false })?.isFile() === true)
      .map((p) => ({ file: join(deb.root, p), package: pkg, path: p, kind: 'scene' as const }));
  });
  const pool = [...keep, ...scenes].sort((a, b) => (orderKey(a) < orderKey(b) ? -1 : 1));
  if (pool.length < count) throw new StudyError(`only ${pool.length} usable photographs, ${count} asked for`);
  const probes = pool.slice(0, count);
  const key = createHash('sha256')
    .update(JSON.stringify({ side: PROBE_SIDE, grey: GREY, probes: probes.map((p) => [p.package, p.path, p.kind]), debs: debs.map((d) => d.sha256) }))
    .digest('hex');
  await buildOnce(
    dir,
    async (tmp) => {
      const width = String(count - 1).length;
      const names: string[] = [];
      for (const [i, p] of probes.entries()) {
        const slug = p.path
          .replace(/\.[a-z]+$/i, '')
          .split('/')
          .slice(-2)
          .join('-')
          .replace(/[^A-Za-z0-9_-]+/g, '_');
        const name = `${String(i).padStart(width, '0')}-${slug}.png`;
        const img = sharp(p.file).toColourspace('srgb');
        const square =
          p.kind === 'stamp'
            ? img.resize(PROBE_SIDE, PROBE_SIDE, { fit: 'contain', background: GREY }).flatten({ background: GREY })
            : img.flatten({ background: GREY }).resize(PROBE_SIDE, PROBE_SIDE, { fit: 'cover' });
        await square.removeAlpha().png({ compressionLevel: 9 }).toFile(join(tmp, name));
        names.push(name);
      }
      // The provenance sits beside the folder, so the folder holds only the probe images.
      writeFileSync(
        `${dir}.json`,
        `${JSON.stringify({ count, pool: pool.length, dropped, side: PROBE_SIDE, probes: probes.map((p, i) => ({ file: names[i], package: p.package, path: p.path, kind: p.kind })) }, null, 1)}\n`,
      );
    },
    key,
  );
  return { dir, count, pool: pool.length, stamps: keep.length, dropped, probes, key };
}
