/**
 * A zoo that takes models: entries naming TensorFlow.js and ONNX models are
 * extracted on the zoo's probe set, cached by content in the zoo's folder,
 * and scored like activation sets. A new model is extracted once (2K + 1
 * pairs), a model whose weights change is extracted again (2K - 1 pairs), an
 * unchanged zoo extracts and computes nothing; every entry equals `extract`
 * + `score` by hand, bit for bit; a bad model is exit 2 naming its entry and
 * file once the other pairs are stored; and on a cluster, the workers read
 * the extracted sets from the zoo's folder.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extract, score } from '../dist/index.js';
import { killAll, ready, spawnCli, startWorker } from './helpers/cluster.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './helpers/servers.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const NULL = ['--null', '3', '--null-sample', '20'];
const ONNX_LAYERS = ['conv2', 'conv3', 'fc'];

interface ModelEntry {
  readonly name: string;
  readonly model: string;
  readonly layers?: readonly string[];
}

/** A scratch copy of examples/: the three tfjs models, the two ONNX models and the probe images. */
const root = mkdtempSync(join(tmpdir(), 'nc-zoo-models-'));
for (const name of ['a', 'b', 'c']) cpSync(join(ROOT, 'examples', 'tfjs', name), join(root, 'models', name), { recursive: true });
for (const name of ['x', 'y']) cpSync(join(ROOT, 'examples', 'zoo-models', 'models', `${name}.onnx`), join(root, 'models', `${name}.onnx`));
cpSync(join(ROOT, 'examples', 'tfjs', 'probes'), join(root, 'probes'), { recursive: true });

const FOUR: ModelEntry[] = [
  { name: 'tfjs-a', model: 'models/a' },
  { name: 'tfjs-b', model: 'models/b' },
  { name: 'onnx-x', model: 'models/x.onnx', layers: ONNX_LAYERS },
  { name: 'onnx-y', model: 'models/y.onnx', layers: ONNX_LAYERS },
];
const FIVE: ModelEntry[] = [...FOUR, { name: 'tfjs-c', model: 'models/c' }];

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function zooFile(dir: string, models: readonly ModelEntry[], extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'zoo.json');
  writeFileSync(file, JSON.stringify({ extract: { probes: 'probes', preprocess: 'tf', batch: 32 }, models, ...extra }));
  return file;
}

const extractedSets = (out: string): string[] => readdirSync(join(out, 'extracted')).sort();

interface Report {
  scores: unknown;
  null: unknown;
  chance: unknown;
  constant: unknown;
  neurons: unknown;
  probes: number;
  layers: { model: string; name: string; neurons: number; constant: number; mean: unknown }[];
}

/** Every pair the zoo stored, by model names, through `zoo-store export` and the models' content keys in matrix.json. */
function zooReports(out: string): Map<string, Report> {
  const file = join(out, '..', `${Date.now()}-export.jsonl`);
  const exported = run(['zoo-store', 'export', join(out, 'zoo.sqlite'), file]);
  expect(exported.status, exported.stderr).toBe(0);
  const matrix = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as { models: { name: string; key: string }[] };
  const name = new Map(matrix.models.map((m) => [m.key, m.name]));
  const reports = new Map<string, Report>();
  for (const line of readFileSync(file, 'utf8').trim().split('\n').slice(1)) {
    const record = JSON.parse(line) as { f: string; g: string; report: Report };
    if (name.has(record.f) && name.has(record.g)) reports.set(`${name.get(record.f)}|${name.get(record.g)}`, record.report);
  }
  return reports;
}

/** What a report says that the zoo must reproduce exactly (not its timings or paths). */
const numbers = (r: Report) => ({
  scores: r.scores,
  null: r.null === null ? null : { ...(r.null as Record<string, unknown>), seconds: 'timing' },
  chance: r.chance,
  constant: r.constant,
  neurons: r.neurons,
  probes: r.probes,
  layers: r.layers.map((l) => ({ model: l.model, name: l.name, neurons: l.neurons, constant: l.constant, mean: l.mean })),
});

const dir = join(root, 'zoo');
const out = join(dir, 'out');
let firstCsv = '';

describe('neurocorr zoo with models (embedded)', () => {
  beforeAll(() => {
    mkdirSync(dir);
    cpSync(join(root, 'models'), join(dir, 'models'), { recursive: true });
    cpSync(join(root, 'probes'), join(dir, 'probes'), { recursive: true });
  });

  it('extracts 4 models (2 tfjs, 2 ONNX) and computes their 16 pairs; the folder lists its extracted sets', () => {
    const r = run(['zoo', zooFile(dir, FOUR), '--out', out, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/4 models, 16 ordered pairs: extracted 4 models, reused 0; computed 16 pairs, reused 0/);
    expect(extractedSets(out)).toHaveLength(4);
    const marker = JSON.parse(readFileSync(join(out, 'zoo.json'), 'utf8')) as { files: string[] };
    expect(marker.files).toContain('extracted');
    const matrix = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as { models: { name: string; model: string }[] };
    expect(matrix.models.map((m) => m.model)).toEqual(FOUR.map((m) => join(dir, m.model)));
    firstCsv = readFileSync(join(out, 'matrix.csv'), 'utf8');
  });

  it('a fifth model is extracted alone and computes 9 pairs (2K + 1)', () => {
    const r = run(['zoo', zooFile(dir, FIVE), '--out', out, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/5 models, 25 ordered pairs: extracted 1 model, reused 4; computed 9 pairs, reused 16/);
    expect(r.stderr).toContain('extracting model tfjs-c');
    expect(r.stderr).not.toMatch(/extracting model (tfjs-a|tfjs-b|onnx-x|onnx-y)/);
    expect(extractedSets(out)).toHaveLength(5);
  });

  it('a changed weight re-extracts only that model, recomputes its 9 pairs (2K - 1), and drops its old set', () => {
    const before = extractedSets(out);
    const weights = join(dir, 'models', 'b', 'weights.bin');
    const bytes = readFileSync(weights);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, 4);
    values[0] = values[0]! + 0.25;
    writeFileSync(weights, bytes);
    const r = run(['zoo', zooFile(dir, FIVE), '--out', out, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/5 models, 25 ordered pairs: extracted 1 model, reused 4; computed 9 pairs, reused 16/);
    expect(r.stderr).toContain('extracting model tfjs-b');
    const after = extractedSets(out);
    expect(after).toHaveLength(5);
    expect(after.filter((k) => !before.includes(k))).toHaveLength(1);
  });

  it('an unchanged zoo extracts nothing and computes nothing', () => {
    const r = run(['zoo', zooFile(dir, FIVE), '--out', out, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/5 models, 25 ordered pairs: extracted 0 models, reused 5; computed 0 pairs, reused 25/);
    expect(r.stderr).not.toContain('extracting model');
  });

  it('every entry equals extract + score by hand, bit for bit', async () => {
    const reports = zooReports(out);
    expect(reports.size).toBe(25);
    const hand = join(root, 'by-hand');
    const sets = new Map<string, string>();
    for (const m of FIVE) {
      const set = join(hand, m.name);
      await extract({
        model: join(dir, m.model),
        probes: join(dir, 'probes'),
        out: set,
        preprocess: 'tf',
        batch: 32,
        ...(m.layers ? { layers: m.layers } : {}),
      });
      sets.set(m.name, set);
    }
    for (const f of FIVE) {
      for (const g of FIVE) {
        const { report } = await score({
          f: sets.get(f.name)!,
          g: sets.get(g.name)!,
          progress: false,
          log: () => undefined,
          null: { permutations: 3, sample: 20 },
        });
        expect(numbers(reports.get(`${f.name}|${g.name}`)!), `${f.name} x ${g.name}`).toEqual(numbers(report as unknown as Report));
      }
    }
  });

  it('a bad model is exit 2 naming its entry and file, after the other pairs are stored and written', () => {
    const bad = mkdtempSync(join(tmpdir(), 'nc-zoo-models-bad-'));
    cpSync(join(root, 'models'), join(bad, 'models'), { recursive: true });
    cpSync(join(root, 'probes'), join(bad, 'probes'), { recursive: true });
    writeFileSync(join(bad, 'models', 'broken.onnx'), 'not an onnx model');
    const models: ModelEntry[] = [
      { name: 'tfjs-a', model: 'models/a' },
      { name: 'broken', model: 'models/broken.onnx' },
      { name: 'onnx-x', model: 'models/x.onnx', layers: ONNX_LAYERS },
      { name: 'no-layer', model: 'models/y.onnx', layers: ['nope'] },
    ];
    const badOut = join(bad, 'out');
    const r = run(['zoo', zooFile(bad, models), '--out', badOut, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(join(bad, 'zoo.json'));
    expect(r.stderr).toContain(`model "broken" (${join(bad, 'models', 'broken.onnx')})`);
    expect(r.stderr).toContain(`model "no-layer" (${join(bad, 'models', 'y.onnx')})`);
    expect(r.stderr).toContain('nope');
    expect(r.stderr).toMatch(/2 models could not be extracted/);
    // The good models' pairs are stored and the outputs hold them alone.
    expect(r.stderr).toMatch(/2 models, 4 ordered pairs: extracted 2 models, reused 0, left out broken, no-layer; computed 4 pairs, reused 0/);
    const matrix = JSON.parse(readFileSync(join(badOut, 'matrix.json'), 'utf8')) as { models: { name: string }[]; extraction: { failed: string[] } };
    expect(matrix.models.map((m) => m.name)).toEqual(['tfjs-a', 'onnx-x']);
    expect(matrix.extraction.failed).toEqual(['broken', 'no-layer']);
    // Once fixed, only the new models' pairs are computed.
    const fixed = run([
      'zoo',
      zooFile(
        bad,
        models.filter((m) => m.name !== 'broken' && m.name !== 'no-layer'),
      ),
      '--out',
      badOut,
      '--no-progress',
      ...NULL,
    ]);
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/extracted 0 models, reused 2; computed 0 pairs, reused 4/);
  });

  it('refuses a bad zoo file before anything runs (exit 2 naming the file and the entry), leaving no folder', () => {
    const bad = mkdtempSync(join(tmpdir(), 'nc-zoo-models-file-'));
    const badOut = join(bad, 'out');
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        {
          models: [
            { name: 'a', path: 'x', model: 'y.onnx' },
            { name: 'b', path: 'z' },
          ],
        },
        /models\[0\] \("a"\) needs exactly one of "path" .* and "model"/,
      ],
      [
        {
          models: [
            { name: 'a', model: 'a.onnx' },
            { name: 'b', model: 'b.onnx' },
          ],
        },
        /model "a" names a model, and the file has no "extract" section/,
      ],
      [
        {
          models: [
            { name: 'a', path: 'x', layers: ['c'] },
            { name: 'b', path: 'z' },
          ],
        },
        /models\[0\] \("a"\)\.layers applies to model entries only/,
      ],
      [
        {
          extract: { probes: join(root, 'probes') },
          models: [
            { name: 'a', model: 'a.onnx' },
            { name: 'b', model: 'b.onnx' },
          ],
        },
        /model "a" has no "preprocess", and its probes .* are images/,
      ],
      [
        {
          extract: { probes: join(root, 'probes'), size: 0 },
          models: [
            { name: 'a', model: 'a.onnx' },
            { name: 'b', path: 'x' },
          ],
        },
        /"extract"\.size must be an integer from 1 to/,
      ],
      [
        {
          extract: { probes: 'nowhere', preprocess: 'tf' },
          models: [
            { name: 'a', model: 'a.onnx' },
            { name: 'b', path: 'x' },
          ],
        },
        /"extract"\.probes cannot be read/,
      ],
      [
        {
          extract: { probes: 'p', preprocess: 'tf' },
          models: [
            { name: 'a', model: 'a.onnx', preprocess: 'fancy' },
            { name: 'b', path: 'x' },
          ],
        },
        /models\[0\] \("a"\)\.preprocess must be one of/,
      ],
    ];
    for (const [json, message] of cases) {
      const file = join(bad, 'zoo.json');
      writeFileSync(file, JSON.stringify(json));
      const r = run(['zoo', file, '--out', badOut]);
      expect(r.status, `${JSON.stringify(json)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(message);
      expect(existsSync(badOut)).toBe(false);
    }
  });
});

describe('the example model zoo (examples/zoo-models)', () => {
  it('runs as written: the two tfjs siblings and the two ONNX siblings each cluster together; progress covers the extraction', () => {
    const exampleOut = join(mkdtempSync(join(tmpdir(), 'nc-zoo-models-example-')), 'zoo');
    const r = run(['zoo', join(ROOT, 'examples', 'zoo-models', 'zoo.json'), '--out', exampleOut], { NEUROCORR_PROGRESS_MS: '0' });
    expect(r.status, r.stderr).toBe(0);
    for (const [k, name] of ['tfjs-a', 'tfjs-b', 'onnx-x', 'onnx-y'].entries()) {
      expect(r.stderr).toMatch(new RegExp(`progress: extracting ${name} \\(model ${k + 1}/4\\) {2}64/64 probes 100%`));
    }
    expect(r.stderr).toMatch(/progress: model pairs \d+\/16 {2}\d+\/\d+ tiles/);
    expect(r.stdout).toMatch(/4 models, 16 ordered pairs: extracted 4 models, reused 0; computed 16 pairs, reused 0/);
    const json = JSON.parse(readFileSync(join(exampleOut, 'matrix.json'), 'utf8')) as { order: string[] };
    const adjacent = (a: string, b: string) => Math.abs(json.order.indexOf(a) - json.order.indexOf(b)) === 1;
    expect(adjacent('tfjs-a', 'tfjs-b') && adjacent('onnx-x', 'onnx-y'), json.order.join(',')).toBe(true);
  });
});

describe('neurocorr zoo with models (cluster)', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  });
  afterAll(async () => {
    await killAll();
    await stopAllServers();
  });

  it('extracts in the zoo process; the workers read the extracted sets from the zoo folder; the matrix equals the embedded one bit for bit', async () => {
    expect(firstCsv).not.toBe('');
    const workers = [startWorker(nats.url), startWorker(nats.url)];
    await Promise.all(workers.map((w) => ready(w)));
    // The first four models as they were (b's weights were changed since: use the examples' copies).
    const clusterDir = mkdtempSync(join(tmpdir(), 'nc-zoo-models-cluster-'));
    cpSync(join(root, 'models'), join(clusterDir, 'models'), { recursive: true });
    cpSync(join(root, 'probes'), join(clusterDir, 'probes'), { recursive: true });
    const clusterOut = join(clusterDir, 'out');
    const c = spawnCli([
      'zoo',
      zooFile(clusterDir, FOUR),
      '--out',
      clusterOut,
      '--no-progress',
      '--nats',
      nats.url,
      '--redis',
      redis.url,
      '--job',
      `zoo-models-${process.pid}`,
      ...NULL,
    ]);
    expect(await c.exited, c.stderr()).toBe(0);
    expect(c.stdout()).toMatch(/extracted 4 models, reused 0; computed 16 pairs, reused 0/);
    expect(c.stderr().match(/"tiles published"/g)).toHaveLength(1);
    expect(readFileSync(join(clusterOut, 'matrix.csv'), 'utf8')).toBe(firstCsv);
  });
});
