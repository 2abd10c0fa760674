/**
 * The zoo's output folder (zoo/): matrix.csv, matrix.json and
 * matrix.arrow agree with the pairs' reports exactly; the clustering order;
 * the heatmaps (SVG, PNG with the bundled fonts); report.html in a real
 * headless chromium, offline; atomic writes and the --force rules.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../dist/index.js';
import { zooFiles, zooOrder } from '../dist/zoo/contents.js';
import { heatmapSvg } from '../dist/zoo/heatmap.js';
import { CSV_HEADER, DIRECTIONS, VALUE_COLUMNS, pairValues } from '../dist/zoo/matrix.js';
import { averageLinkage, symmetricDistance } from '../dist/zoo/order.js';
import { checkZooOutputs, writeZooFiles, writeZooOutputs, ZOO_FILES } from '../dist/zoo/outputs.js';
import { PNG_SCALE, rasterize } from '../dist/zoo/png.js';
import type { ZooResult } from '../dist/zoo/types.js';
import { buildZooResult, withoutNull, zooFixtureModels } from './helpers/zoo.js';
import { BROWSER_TIMEOUT_MS, decodePng, launchChromium, pixelDiff, pixelStats, pngSize } from './helpers/browser.js';

const scratches: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'nc-zoo-out-'));
  scratches.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of scratches) rmSync(dir, { recursive: true, force: true });
});

let result: ZooResult;
let out: string;
beforeAll(async () => {
  result = await buildZooResult(zooFixtureModels(scratch()));
  out = join(scratch(), 'zoo');
  await writeZooOutputs(result, out, { force: false });
}, 120_000);

const MODES = ['paper', 'penalized'] as const;
/** A matrix.csv number as pandas reads it. */
const csvValue = (field: string): number | null =>
  field === '' ? null : field === 'inf' ? Infinity : field === '-inf' ? -Infinity : field === 'NaN' ? NaN : Number(field);
const pairOf = (f: string, g: string) => result.pairs.find((p) => p.f === f && p.g === g)!;
/** Every file of a folder (recursively) with its bytes, to compare before and after. */
const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((p) => [p, statSync(join(dir, p)).isFile() ? readFileSync(join(dir, p), 'hex') : 'dir']),
  );

describe('zoo matrices', () => {
  it('writes the seven files, zoo.json last, and matrix.csv holds every ordered pair, mode and direction with the reports’ numbers exactly', () => {
    expect(readdirSync(out).sort()).toEqual([...ZOO_FILES].sort());
    expect(ZOO_FILES.at(-1)).toBe('zoo.json');
    const marker = JSON.parse(readFileSync(join(out, 'zoo.json'), 'utf8')) as Record<string, unknown>;
    expect(marker).toMatchObject({ format: 'neurocorr-zoo', tag: 'neurocorr zoo', version: 1 });
    const lines = readFileSync(join(out, 'matrix.csv'), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('f,g,mode,direction,raw,null_mean,null_se,corrected,corrected_se,z');
    expect(lines).toHaveLength(1 + 4 * 4 * 2 * 3);
    const seen = new Set<string>();
    for (const line of lines.slice(1)) {
      const [f, g, mode, direction, ...values] = line.split(',');
      const expected = pairValues(pairOf(f!, g!), mode as 'paper', direction as 'forward');
      VALUE_COLUMNS.forEach((column, i) => {
        const v = expected[column];
        expect(v, `${line} ${column}`).not.toBeNull();
        expect(csvValue(values[i]!), `${line} ${column}`).toBe(v);
      });
      expect(expected.raw).toBe(pairOf(f!, g!).report.scores[mode as 'paper'][direction as 'forward']);
      expect(expected.corrected).toBe(pairOf(f!, g!).report.null!.scores[mode as 'paper'][direction as 'forward'].corrected);
      seen.add(`${f} ${g} ${mode} ${direction}`);
    }
    expect(seen.size).toBe(96);
  });

  it('matrix.json holds the K x K matrices of every mode and direction in model order, the models and the clustering', () => {
    const json = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as {
      models: { name: string; tags: string[] }[];
      order: string[];
      computed: number;
      reused: number;
      options: unknown;
      matrices: Record<string, Record<string, Record<string, (number | null)[][]>>>;
    };
    const names = result.models.map((m) => m.name);
    expect(json.models.map((m) => m.name)).toEqual(names);
    expect(json.models[3]!.tags).toEqual(['synth', 'seed 11', 'dead 30%']);
    expect([json.computed, json.reused]).toEqual([16, 0]);
    expect(json.options).toEqual(result.options);
    expect([...json.order].sort()).toEqual([...names].sort());
    for (const mode of MODES) {
      for (const direction of DIRECTIONS) {
        const m = json.matrices[mode]![direction]!;
        expect(Object.keys(m).sort()).toEqual(['corrected', 'correctedSe', 'nullMean', 'nullSe', 'raw', 'z']);
        names.forEach((f, i) =>
          names.forEach((g, j) => {
            const report = pairOf(f, g).report;
            const stat = report.null!.scores[mode][direction];
            expect(m['raw']![i]![j]).toBe(report.scores[mode][direction]);
            expect([m['nullMean']![i]![j], m['nullSe']![i]![j], m['corrected']![i]![j], m['correctedSe']![i]![j]]).toEqual([
              stat.mean,
              stat.se,
              stat.corrected,
              stat.correctedSe,
            ]);
            expect(m['z']![i]![j]).toBe(Number.isFinite(stat.z) ? stat.z : null);
          }),
        );
      }
    }
  });

  it('matrix.arrow is an Arrow IPC file of the same long table: Utf8 names, Float64 numbers, read back by apache-arrow', () => {
    const bytes = readFileSync(join(out, 'matrix.arrow'));
    expect(bytes.subarray(0, 6).toString('latin1')).toBe('ARROW1'); // the IPC file format, not a stream
    const table = tableFromIPC(bytes);
    expect(table.schema.fields.map((f) => [f.name, String(f.type)])).toEqual([
      ...CSV_HEADER.slice(0, 4).map((n) => [n, 'Utf8']),
      ...VALUE_COLUMNS.map((n) => [n, 'Float64']),
    ]);
    expect(table.schema.metadata.get('format')).toBe('neurocorr-zoo-matrix');
    const csv = readFileSync(join(out, 'matrix.csv'), 'utf8').trimEnd().split('\n').slice(1);
    expect(table.numRows).toBe(csv.length);
    const rows = table.toArray();
    csv.forEach((line, i) => {
      const fields = line.split(',');
      const row = rows[i] as Record<string, unknown>;
      CSV_HEADER.forEach((column, c) => {
        if (c < 4) expect(row[column]).toBe(fields[c]);
        else expect(row[column]).toBe(csvValue(fields[c]!));
      });
    });
  });

  it('without a permutation null (--null 0): empty CSV fields, Arrow nulls, JSON nulls, the raw score orders the models, and one heatmap panel', async () => {
    const bare = withoutNull(result);
    const dir = join(scratch(), 'bare');
    await writeZooOutputs(bare, dir, { force: false });
    const lines = readFileSync(join(dir, 'matrix.csv'), 'utf8').trimEnd().split('\n').slice(1);
    for (const line of lines) expect(line).toMatch(/^[^,]+,[^,]+,\w+,\w+,[0-9.e-]+,,,,,$/);
    const table = tableFromIPC(readFileSync(join(dir, 'matrix.arrow')));
    expect(table.getChild('z')!.nullCount).toBe(96);
    expect(table.getChild('raw')!.nullCount).toBe(0);
    expect(table.getChild('null_mean')!.get(0)).toBeNull();
    const json = JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')) as {
      clustering: { score: string };
      matrices: { paper: { forward: { corrected: unknown[][] } } };
    };
    expect(json.clustering.score).toBe('raw');
    expect(json.matrices.paper.forward.corrected.flat().every((v) => v === null)).toBe(true);
    const svg = readFileSync(join(dir, 'heatmap.svg'), 'utf8');
    expect(svg).toContain('raw score (paper, forward)');
    expect(svg).not.toContain('corrected score (');
    expect(svg).toContain('no corrected scores');
  });
});

describe('zoo clustering order', () => {
  it('average linkage: merges the closest pair, averages over members, breaks exact ties by model order, reads leaves off the dendrogram', () => {
    // 0 and 2 are close, 1 and 3 are close, the two groups far apart.
    const scores = [
      [1, 0.1, 0.9, 0.2],
      [0.1, 1, 0.1, 0.7],
      [0.8, 0.2, 1, 0.1],
      [0.2, 0.8, 0.1, 1],
    ];
    const d = symmetricDistance(scores);
    expect(d[0]![2]).toBeCloseTo(0.15, 12);
    expect(d[1]![3]).toBeCloseTo(0.25, 12);
    const tree = averageLinkage(d);
    expect(tree.order).toEqual([0, 2, 1, 3]);
    expect(tree.merges.map((m) => [m.left, m.right, m.size])).toEqual([
      [0, 2, 2],
      [1, 3, 2],
      [4, 5, 4],
    ]);
    // The last merge's distance is the mean over the four cross pairs.
    expect(tree.merges[2]!.distance).toBeCloseTo((d[0]![1]! + d[0]![3]! + d[2]![1]! + d[2]![3]!) / 4, 12);
    // All equal: ties go to the earliest models, and the order stays the zoo's.
    const flat = averageLinkage(symmetricDistance(Array.from({ length: 5 }, () => new Array<number>(5).fill(0.5))));
    expect(flat.order).toEqual([0, 1, 2, 3, 4]);
    expect(flat.merges.map((m) => [m.left, m.right])).toEqual([
      [0, 1],
      [5, 2],
      [6, 3],
      [7, 4],
    ]);
    // Missing scores: the model joins last.
    expect(
      averageLinkage(
        symmetricDistance([
          [1, null, 0.5],
          [null, 1, 0.1],
          [0.5, 0.1, 1],
        ]),
      ).order,
    ).toEqual([0, 2, 1]);
    expect(averageLinkage([]).order).toEqual([]);
    expect(averageLinkage([[0]]).order).toEqual([0]);
  });

  it('orders the real zoo deterministically and puts the obviously related pair side by side', () => {
    const first = zooOrder(result);
    expect(zooOrder(result)).toEqual(first);
    expect(first.score).toBe('corrected');
    const names = first.order.map((i) => result.models[i]!.name);
    expect(names).toEqual(['mlp', 'cnn', 'synth-a', 'synth-a-dead']);
    expect([first.merges[0]!.left, first.merges[0]!.right]).toEqual([1, 3]);
    const json = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as { order: string[] };
    expect(json.order).toEqual(names);
  });
});

describe('zoo heatmaps', () => {
  it('heatmap.svg titles both panels, labels the axes with every model name, in the clustering order, and has legends', () => {
    const svg = readFileSync(join(out, 'heatmap.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('raw score (paper, forward)');
    expect(svg).toContain('corrected score (paper, forward)');
    expect(svg).toContain('F (row model)');
    expect(svg).toContain('G (column model)');
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    for (const name of ['mlp', 'cnn', 'synth-a', 'synth-a-dead']) expect(texts.filter((t) => t === name).length, name).toBe(4); // x and y of 2 panels
    expect(texts.indexOf('cnn')).toBeLessThan(texts.indexOf('synth-a'));
    expect(texts).toContain('raw');
    expect(texts).toContain('corrected');
    expect(svg).not.toMatch(/href=|url\(http/);
  });

  it('escapes model names in the SVG', async () => {
    const svg = await heatmapSvg({
      names: ['a<b>&"c', '</svg><script>x</script>'],
      mode: 'paper',
      raw: [
        [1, 0.2],
        [0.3, 1],
      ],
      corrected: null,
      orderedBy: 'test',
    });
    expect(svg).not.toContain('<script');
    expect(svg).toContain('a&lt;b&gt;&amp;"c');
  });

  it('heatmap.png is a PNG at twice the SVG’s size whose text is drawn with the bundled DejaVu fonts (no system fonts)', async () => {
    const svg = readFileSync(join(out, 'heatmap.svg'), 'utf8');
    const png = readFileSync(join(out, 'heatmap.png'));
    const size = pngSize(png);
    const [, w, h] = /<svg[^>]* width="(\d+(?:\.\d+)?)" height="(\d+(?:\.\d+)?)"/.exec(svg)!;
    expect(size).toEqual({ width: Math.round(Number(w) * PNG_SCALE), height: Math.round(Number(h) * PNG_SCALE) });
    const decoded = await decodePng(png);
    expect([decoded.width, decoded.height]).toEqual([size.width, size.height]);
    const stats = pixelStats(decoded.pixels);
    expect(stats.colours).toBeGreaterThan(100);
    expect(stats.nonBackground).toBeGreaterThan(0.2);
    // Text pixels: the same SVG drawn with no font at all differs, and only where text is (no text at all gives the same picture).
    const withFonts = await rasterize(svg);
    const noFonts = await rasterize(svg, { fonts: false });
    const noText = await rasterize(svg.replace(/<text[^>]*>[^<]*<\/text>/g, ''), { fonts: false });
    expect(Buffer.from(withFonts.png).equals(png)).toBe(true);
    expect(pixelDiff(noFonts.pixels, noText.pixels)).toBe(0);
    expect(pixelDiff(withFonts.pixels, noText.pixels)).toBeGreaterThan(5000);
  });
});

describe('zoo report.html in headless chromium', () => {
  it(
    'opens offline with no request but itself and no console error; the heatmap and the table show; a header click sorts; a pair opens; the page is not blank',
    async () => {
      const file = join(out, 'report.html');
      const url = pathToFileURL(file).href;
      const html = readFileSync(file, 'utf8');
      expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;;/);
      expect(html).not.toMatch(/<(?:link|img|iframe)\b|\bsrc=|https?:\/\/(?!www\.w3\.org)/);
      const browser = await launchChromium();
      try {
        const context = await browser.newContext({ offline: true, viewport: { width: 1280, height: 900 } });
        const page = await context.newPage();
        page.setDefaultTimeout(BROWSER_TIMEOUT_MS);
        const requests: string[] = [];
        const problems: string[] = [];
        await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
        page.on('request', (r) => requests.push(r.url()));
        page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
        });
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('dialog', (d) => problems.push(`dialog: ${d.message()}`));
        await page.goto(url, { waitUntil: 'load' });

        const heatmap = page.locator('#heatmap svg');
        expect(await heatmap.isVisible()).toBe(true);
        expect((await heatmap.boundingBox())!.width).toBeGreaterThan(400);
        const table = page.locator('#pairs-table');
        expect(await table.isVisible()).toBe(true);
        expect(await table.locator('tbody tr').count()).toBe(16);

        // Sort by the forward corrected score: descending first, then ascending; then by F, alphabetically.
        const column = async (n: number) =>
          table.locator(`tbody tr td:nth-child(${n})`).evaluateAll((cells) => cells.map((c) => c.getAttribute('data-v') ?? c.textContent));
        const corrected = page.locator('#pairs-table thead th', { hasText: 'corrected \u2192' });
        await corrected.locator('button').click();
        const down = (await column(8)).map(Number);
        expect(down).toEqual([...down].sort((a, b) => b - a));
        expect(await corrected.getAttribute('aria-sort')).toBe('descending');
        await corrected.locator('button').click();
        const up = (await column(8)).map(Number);
        expect(up).toEqual([...up].sort((a, b) => a - b));
        await page.locator('#pairs-table thead th').first().locator('button').click();
        const fs = (await column(1)) as string[];
        expect(fs).toEqual([...fs].sort((a, b) => a.localeCompare(b)));

        // A pair's details: opened from the table, filled with its chance level and layers.
        const first = table.locator('tbody tr').first();
        const [f, g] = [await first.locator('td').nth(0).textContent(), await first.locator('td').nth(1).textContent()];
        await first.locator('td a').first().click();
        const details = page.locator('details[open]');
        expect(await details.count()).toBe(1);
        expect(await details.locator('summary').textContent()).toContain(`${f} \u2192 ${g}`);
        const layerRows = details.locator('.body table').nth(1).locator('tbody tr');
        expect(await layerRows.count()).toBe(pairOf(f!, g!).report.layers.length);
        expect(await details.locator('.body table').first().locator('tbody tr').count()).toBe(6);

        await page.evaluate('window.scrollTo(0, 0)');
        const shot = await page.screenshot({ fullPage: false });
        const decoded = await decodePng(shot);
        expect([decoded.width, decoded.height]).toEqual([1280, 900]);
        const stats = pixelStats(decoded.pixels);
        expect(stats.colours).toBeGreaterThan(200);
        expect(stats.nonBackground).toBeGreaterThan(0.1);

        expect(problems).toEqual([]);
        expect(requests).toEqual([url]);
        await context.close();
      } finally {
        await browser.close();
      }
    },
    BROWSER_TIMEOUT_MS * 3,
  );

  it('escapes names, tags and paths from user files', async () => {
    const evil = '<script>alert(1)</script>"&\'';
    const tampered: ZooResult = { ...result, models: result.models.map((m, i) => (i === 0 ? { ...m, tags: [evil], path: `/x/${evil}` } : m)) };
    const files = await zooFiles(tampered);
    const html = String([...files.find((f) => f.name === 'report.html')!.chunks][0]);
    expect(html.match(/<script/g)).toHaveLength(2); // the page's data and its code, nothing else
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#38;&#39;');
  });
});

describe('zoo outputs: atomic writes and --force', () => {
  it('a failure while writing leaves nothing: no new folder, no temps; in an existing folder the old outputs stay as they were', async () => {
    const files = await zooFiles(result);
    /** The files, with heatmap.png failing after its first chunk (the 5th of 7 files: the first four are written by then). */
    const failing = () =>
      files.map((f) =>
        f.name !== 'heatmap.png'
          ? f
          : {
              ...f,
              chunks: (function* () {
                yield new Uint8Array(1000);
                throw new Error('disk full (injected)');
              })(),
            },
      );
    const parent = scratch();
    await expect(writeZooFiles(join(parent, 'fresh'), failing())).rejects.toThrow('disk full (injected)');
    expect(readdirSync(parent)).toEqual([]);

    const before = snapshot(out);
    await expect(writeZooFiles(out, failing())).rejects.toThrow('disk full (injected)');
    expect(snapshot(out)).toEqual(before);
  });

  it('a failed rename puts back the files already replaced, and removes the temps', async () => {
    const dir = join(scratch(), 'zoo');
    await writeZooOutputs(result, dir, { force: false });
    writeFileSync(join(dir, 'matrix.csv'), 'old csv\n');
    rmSync(join(dir, 'report.html'));
    mkdirSync(join(dir, 'report.html', 'blocker'), { recursive: true }); // a rename onto a non-empty folder fails
    const before = snapshot(dir);
    await expect(writeZooFiles(dir, await zooFiles(result))).rejects.toThrow();
    expect(snapshot(dir)).toEqual(before);
    expect(readFileSync(join(dir, 'matrix.csv'), 'utf8')).toBe('old csv\n');
  });

  it('--force: refuses an existing folder without it, and with it one neurocorr zoo did not write or that holds other files; writes into its own', async () => {
    const inputs = result.models.map((m) => m.path);
    const refused = (dir: string, force: boolean, why: RegExp) => {
      let error: unknown;
      try {
        checkZooOutputs(dir, inputs, force);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(2);
      expect((error as Error).message).toMatch(why);
    };
    const dir = join(scratch(), 'zoo');
    await writeZooOutputs(result, dir, { force: false });
    refused(dir, false, /already exists; choose a new output directory, or pass force to replace it/);
    await expect(writeZooOutputs(result, dir, { force: false })).rejects.toThrow(/already exists/);
    const marker = readFileSync(join(dir, 'zoo.json'));
    writeFileSync(join(dir, 'matrix.csv'), 'stale\n');
    expect(await writeZooOutputs(result, dir, { force: true })).toEqual(ZOO_FILES.map((f) => join(dir, f)));
    expect(readFileSync(join(dir, 'matrix.csv'), 'utf8')).toBe(readFileSync(join(out, 'matrix.csv'), 'utf8'));
    expect(readFileSync(join(dir, 'zoo.json')).equals(marker)).toBe(true);

    // A stale temp of a dead run is removed; another file makes the folder not neurocorr's alone.
    writeFileSync(join(dir, 'matrix.csv.tmp-2147483646'), 'partial');
    checkZooOutputs(dir, inputs, true);
    expect(readdirSync(dir)).not.toContain('matrix.csv.tmp-2147483646');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    refused(dir, true, /is not a folder written by neurocorr zoo \(it holds notes\.txt, which neurocorr did not write\)/);
    await expect(writeZooOutputs(result, dir, { force: true })).rejects.toThrow(/notes\.txt/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');

    const mine = join(scratch(), 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'data.csv'), 'keep');
    refused(mine, true, /has no zoo\.json with "format": "neurocorr-zoo"/);
    expect(snapshot(mine)).toEqual({ 'data.csv': Buffer.from('keep').toString('hex') });
    const file = join(mine, 'data.csv');
    refused(file, true, /a regular file/);
    refused(join(scratch(), 'missing', 'zoo'), false, /folder .*missing does not exist/);
  });

  it('outputs never overwrite inputs: DIR is not an input, inside one, holding one, or a link to one', () => {
    const synthA = result.models[1]!.path;
    const inputs = result.models.map((m) => m.path);
    const parent = join(synthA, '..');
    const link = join(scratch(), 'link');
    symlinkSync(synthA, link);
    for (const [dir, why] of [
      [synthA, /is the input/],
      [join(synthA, 'zoo'), /is inside the input/],
      [parent, /holds the input/],
      [link, /is the input/],
    ] as const) {
      expect(() => checkZooOutputs(dir, inputs, true)).toThrow(why);
    }
  });
});
