/**
 * `neurocorr zoo`: every ordered pair as one job, equal bit for bit to the
 * single-pair `score` runs, embedded and on a cluster; incremental runs that
 * compute exactly the pairs a change needs; the zoo folder's rules.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, ready, spawnCli, startWorker } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './helpers/servers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const NULL = ['--null', '3', '--null-sample', '20'];

interface Stat {
  mean: number;
  se: number;
  corrected: number;
}
interface Report {
  scores: Record<'paper' | 'penalized', Record<'forward' | 'backward' | 'symmetric', number>>;
  null: { scores: Record<'paper' | 'penalized', Record<'forward' | 'backward' | 'symmetric', Stat>> } | null;
  constant: [number, number];
}
interface MatrixJson {
  models: { name: string }[];
  computed: number;
  reused: number;
}

const root = mkdtempSync(join(tmpdir(), 'nc-zoo-'));
const latent = latents(501, 16, 3);
const names = ['alpha', 'beta', 'gamma', 'delta'];
const sets = names.map((name, k) =>
  writeNpyDir(genModel(510 + k, { m: 16, layers: k === 3 ? [[30]] : [[24], [2, 3, 3]], latent, constants: k === 1 ? 0.1 : 0 }), join(root, name)),
);

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function zooFile(dir: string, models: readonly { name: string; path: string }[]): string {
  const file = join(dir, 'zoo.json');
  writeFileSync(file, JSON.stringify({ models: models.map((m) => ({ ...m, tags: ['test'] })) }));
  return file;
}

function single(f: string, g: string): Report {
  const r = run(['score', f, g, '--json', '--no-progress', ...NULL]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

/** Each pair's report as the zoo wrote it (report.html embeds them; matrix.csv rounds nothing, but the CSV has no per-layer data). */
function zooReports(out: string): Map<string, Report> {
  const rows = readFileSync(join(out, 'matrix.csv'), 'utf8').trim().split('\n');
  const header = rows[0]!.split(',');
  const col = (name: string) => header.indexOf(name);
  const reports = new Map<string, Report>();
  for (const line of rows.slice(1)) {
    const cells = line.split(',');
    const key = `${cells[col('f')]}|${cells[col('g')]}`;
    const mode = cells[col('mode')] as 'paper' | 'penalized';
    const direction = cells[col('direction')] as 'forward' | 'backward' | 'symmetric';
    const report =
      reports.get(key) ?? ({ scores: { paper: {}, penalized: {} }, null: { scores: { paper: {}, penalized: {} } }, constant: [0, 0] } as unknown as Report);
    report.scores[mode][direction] = Number(cells[col('raw')]);
    report.null!.scores[mode][direction] = {
      mean: Number(cells[col('null_mean')]),
      se: Number(cells[col('null_se')]),
      corrected: Number(cells[col('corrected')]),
    };
    reports.set(key, report);
  }
  return reports;
}

function expectSameAsScore(out: string, models: readonly { name: string; path: string }[]): void {
  const reports = zooReports(out);
  expect(reports.size).toBe(models.length ** 2);
  for (const f of models) {
    for (const g of models) {
      const want = single(f.path, g.path);
      const got = reports.get(`${f.name}|${g.name}`)!;
      for (const mode of ['paper', 'penalized'] as const) {
        for (const dir of ['forward', 'backward', 'symmetric'] as const) {
          expect(got.scores[mode][dir], `${f.name} x ${g.name} ${mode} ${dir}`).toBe(want.scores[mode][dir]);
          expect(got.null!.scores[mode][dir].mean).toBe(want.null!.scores[mode][dir].mean);
          expect(got.null!.scores[mode][dir].se).toBe(want.null!.scores[mode][dir].se);
          expect(got.null!.scores[mode][dir].corrected).toBe(want.null!.scores[mode][dir].corrected);
        }
      }
    }
  }
}

const models = names.map((name, k) => ({ name, path: sets[k]! }));

describe('neurocorr zoo (embedded)', () => {
  it('every ordered pair, diagonal included, equals the single-pair score bit for bit; the diagonal is 1 (float32); the summary and the files say what was done', () => {
    const out = join(root, 'out-embedded');
    const r = run(['zoo', zooFile(root, models), '--out', out, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/4 models, 16 ordered pairs: computed 16 pairs, reused 0/);
    for (const file of ['matrix.csv', 'matrix.json', 'matrix.arrow', 'heatmap.svg', 'heatmap.png', 'report.html', 'zoo.json', 'zoo.sqlite']) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
    const matrix = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as MatrixJson;
    expect(matrix.models.map((m) => m.name).sort()).toEqual([...names].sort());
    expectSameAsScore(out, models);
    // A model against itself with no constant neuron matches every neuron to itself.
    const diagonal = zooReports(out).get('alpha|alpha')!;
    expect(Math.abs(1 - diagonal.scores.paper.symmetric)).toBeLessThan(1e-6);
  });

  it('is incremental: a new model computes exactly its row, column and diagonal (2K+1); changed data recomputes exactly its pairs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-zoo-inc-'));
    const out = join(dir, 'zoo');
    const four = models.map((m) => ({ ...m }));
    const first = run(['zoo', zooFile(dir, four), '--out', out, '--no-progress', ...NULL]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/computed 16 pairs, reused 0/);

    const again = run(['zoo', zooFile(dir, four), '--out', out, '--no-progress', ...NULL]);
    expect(again.stdout).toMatch(/computed 0 pairs, reused 16/);

    const fifth = writeNpyDir(genModel(600, { m: 16, layers: [[20]], latent }), join(dir, 'epsilon'));
    const five = [...four, { name: 'epsilon', path: fifth }];
    const added = run(['zoo', zooFile(dir, five), '--out', out, '--no-progress', ...NULL]);
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/5 models, 25 ordered pairs: computed 9 pairs, reused 16/);

    // New values in one of beta's files: beta's row and column (2K - 1 = 9 pairs) are computed again, nothing else.
    const beta = join(dir, 'beta');
    mkdirSync(beta);
    for (const layer of genModel(777, { m: 16, layers: [[24], [2, 3, 3]], latent }).layers) writeNpyDir({ dtype: 'f4', layers: [layer] }, beta);
    const changed = five.map((m) => (m.name === 'beta' ? { ...m, path: beta } : m));
    const r = run(['zoo', zooFile(dir, changed), '--out', out, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/computed 9 pairs, reused 16/);
    expectSameAsScore(out, changed);
  });

  it('exports its results and re-imports them: a zoo on the imported store computes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-zoo-export-'));
    const file = join(dir, 'pairs.jsonl');
    const exported = run(['zoo-store', 'export', join(root, 'out-embedded', 'zoo.sqlite'), file]);
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('16 pairs');
    const store = join(dir, 'copy.sqlite');
    const imported = run(['zoo-store', 'import', store, file]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('16 pairs added, 0 already there');
    const r = run(['zoo', zooFile(dir, models), '--out', join(dir, 'out'), '--store', store, '--no-progress', ...NULL]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/computed 0 pairs, reused 16/);
    expect(readFileSync(join(dir, 'out', 'matrix.csv'), 'utf8')).toBe(readFileSync(join(root, 'out-embedded', 'matrix.csv'), 'utf8'));
    writeFileSync(join(dir, 'bad.jsonl'), '{"not": "an export"}\n');
    const bad = run(['zoo-store', 'import', store, join(dir, 'bad.jsonl')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('bad.jsonl');
  });

  it('reports progress across the whole zoo on plain lines off a terminal', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nc-zoo-progress-')), 'zoo');
    const r = run(['zoo', ...sets.slice(0, 3), '--out', out, ...NULL], { NEUROCORR_PROGRESS_MS: '0' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/progress: model pairs \d+\/9 {2}\d+\/\d+ tiles/);
    expect(r.stderr).toMatch(/zoo: 3 models, 9 ordered pairs: 9 to compute, 0 in the store/);
  });

  it('refuses models on other probes (exit 2 naming both), a mix of declared and undeclared probe fingerprints, and a folder that is not a zoo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-zoo-bad-'));
    const other = writeNpyDir(genModel(700, { m: 12, layers: [[10]] }), join(dir, 'short'));
    const r = run(['zoo', sets[0]!, other, '--out', join(dir, 'out')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(other);
    expect(r.stderr).toContain(sets[0]!);
    expect(existsSync(join(dir, 'out'))).toBe(false);

    const declared = writeNpyDir(genModel(701, { m: 16, layers: [[10]] }), join(dir, 'declared'));
    writeFileSync(join(declared, 'layers.json'), JSON.stringify({ probes: 'imagenet-val-16', layers: [{ file: 'layer00.npy' }] }));
    const mixed = run(['zoo', sets[0]!, declared, '--out', join(dir, 'out')]);
    expect(mixed.status, mixed.stderr).toBe(2);
    expect(mixed.stderr).toMatch(/declares no probe fingerprint but model declared/);

    const foreign = join(dir, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const refused = run(['zoo', sets[0]!, sets[2]!, '--out', foreign]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is not a zoo's folder \(it has no zoo\.json/);
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
  });
});

describe('the README example (examples/zoo)', () => {
  it('runs as written; the two families cluster, and the model that reads no feature sits at chance against the others', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nc-zoo-example-')), 'zoo');
    const r = run(['zoo', join(import.meta.dirname, '..', 'examples', 'zoo', 'zoo.json'), '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/5 models, 25 ordered pairs: computed 25 pairs, reused 0/);
    const json = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as {
      models: { name: string }[];
      order: string[];
      matrices: { paper: { forward: { corrected: number[][] } } };
    };
    const ordered = json.order;
    const adjacent = (a: string, b: string) => Math.abs(ordered.indexOf(a) - ordered.indexOf(b)) === 1;
    expect(adjacent('a1', 'a2') && adjacent('b1', 'b2'), ordered.join(',')).toBe(true);
    const names = json.models.map((m) => m.name);
    const c = (f: string, g: string) => json.matrices.paper.forward.corrected[names.indexOf(f)]![names.indexOf(g)]!;
    expect(c('a1', 'a2')).toBeGreaterThan(c('a1', 'b1'));
    expect(c('b2', 'b1')).toBeGreaterThan(c('b2', 'a2'));
    for (const other of ['a1', 'a2', 'b1', 'b2']) expect(Math.abs(c('random', other))).toBeLessThan(0.05);
  });
});

describe('neurocorr zoo (cluster)', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  });
  afterAll(async () => {
    await killAll();
    await stopAllServers();
  });

  it("puts every pair's tiles in one JetStream job; the matrix equals the embedded one bit for bit", async () => {
    const workers = [startWorker(nats.url), startWorker(nats.url)];
    await Promise.all(workers.map((w) => ready(w)));
    const out = join(mkdtempSync(join(tmpdir(), 'nc-zoo-cluster-')), 'zoo');
    const c = spawnCli([
      'zoo',
      zooFile(mkdtempSync(join(tmpdir(), 'nc-zoo-file-')), models),
      '--out',
      out,
      '--no-progress',
      '--nats',
      nats.url,
      '--redis',
      redis.url,
      '--job',
      `zoo-${process.pid}`,
      ...NULL,
    ]);
    expect(await c.exited, c.stderr()).toBe(0);
    expect(c.stdout()).toMatch(/computed 16 pairs, reused 0/);
    expect(c.stderr()).toMatch(/"tiles published"/);
    expect(c.stderr().match(/"tiles published"/g)).toHaveLength(1);
    expect(readFileSync(join(out, 'matrix.csv'), 'utf8')).toBe(readFileSync(join(root, 'out-embedded', 'matrix.csv'), 'utf8'));
    // Run again, the finished job's stored reports (checked as they are read back from Redis) make the same matrix.
    const again = spawnCli(c.child.spawnargs.slice(2).map((arg) => (arg === out ? `${out}-again` : arg)));
    expect(await again.exited, again.stderr()).toBe(0);
    expect(again.stderr()).toContain(`job zoo-${process.pid} is already done; its stored results are used`);
    expect(readFileSync(join(`${out}-again`, 'matrix.csv'), 'utf8')).toBe(readFileSync(join(out, 'matrix.csv'), 'utf8'));
  });
});
