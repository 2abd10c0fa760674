/** The installed command, kernel reporting, progress lines, and both input formats end to end. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelFromEnv, readEnv } from '../dist/cli/env.js';
import { UsageError } from '../dist/shared/errors.js';
import { encodeSafetensors } from '../dist/shared/formats/index.js';
import { loadKernel } from '../dist/worker/loader.js';
import { bruteForce } from './helpers/brute.js';
import { bruteLayers, genModel, latents, writeNpyDir } from './helpers/models.js';

const ROOT = join(import.meta.dirname, '..');

function run(command: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const neurocorr = (args: string[], env?: Record<string, string>) => run(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), ...args], env);

const latent = latents(3, 12, 2);
const F = genModel(21, { m: 12, layers: [[5], [3, 2, 2]], latent, constants: 0.1 });
const G = genModel(22, { m: 12, layers: [[4], [6]], latent });
const fDir = writeNpyDir(F);
const gDir = writeNpyDir(G);

describe('the installed command', () => {
  it('npx neurocorr --help works from the project, and leaves the build alone', () => {
    // A fresh npx cache makes npx link the project and rerun its install and
    // prepare scripts, as on a first run; both must keep the built files, which
    // the other test files are using at the same time.
    const built = ['worker/native/build/Release/neurocorr.node', 'dist/cli/main.js', 'dist/worker/pool-worker.js'].map((p) => join(ROOT, p));
    const before = built.map((p) => statSync(p).mtimeMs);
    const r = run('npx', ['neurocorr', '--help'], { npm_config_cache: mkdtempSync(join(tmpdir(), 'nc-npx-')) });
    expect(r.status, r.stderr).toBe(0);
    expect(built.map((p) => statSync(p).mtimeMs)).toEqual(before);
    expect(r.stdout).toMatch(/Usage: neurocorr/);
    expect(r.stdout).toMatch(/score/);
    const score = neurocorr(['score', '--help']);
    expect(score.stdout).toMatch(/--matches <file>/);
  });
});

describe('kernel loading', () => {
  it('says which kernel runs and why the others did not', async () => {
    const { kernel, notes } = await loadKernel({ choice: 'auto' });
    // npm ci builds the addon, and auto prefers it.
    expect(kernel.name).toMatch(/^native-(avx512|avx2|scalar)$/);
    expect(notes.some((n) => /^native: (unavailable|loaded)/.test(n))).toBe(true);
    expect(notes.at(-1)).toMatch(/loaded as/);
  });

  it('the worker log reaches stderr, never stdout', () => {
    const r = neurocorr(['score', fDir, gDir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/kernel: .*loaded as/);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });

  it('a kernel asked for by name that cannot load fails loudly with exit 2', async () => {
    const r = neurocorr(['score', fDir, gDir, '--kernel', 'tfjs'], { NEUROCORR_TFJS_BACKEND: 'gpu' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the tfjs kernel was asked for and cannot be loaded/);
    const missing = { NEUROCORR_NATIVE_ADDON: join(tmpdir(), 'nc-no-addon', 'neurocorr.node') };
    const native = neurocorr(['score', fDir, gDir, '--kernel', 'native'], missing);
    expect(native.status).toBe(2);
    expect(native.stderr).toMatch(/the native kernel was asked for and cannot be loaded: native: unavailable \(native addon not built .*nc-no-addon/);
    // Without --kernel, the chain falls back past the missing addon and says why.
    const auto = neurocorr(['score', fDir, gDir, '--json'], missing);
    expect(auto.status).toBe(0);
    expect(auto.stderr).toMatch(/native: unavailable/);
    expect(JSON.parse(auto.stdout).kernel).toMatch(/^tfjs/);
  });
});

describe('kernel environment variables', () => {
  it('become kernel and standardization options, read in one place', () => {
    expect(kernelFromEnv('auto', {})).toEqual({ choice: 'auto' });
    const env = { NEUROCORR_NATIVE_ISA: 'avx2', NEUROCORR_NATIVE_ADDON: '/a/b.node', NEUROCORR_TFJS_BACKEND: 'wasm', NEUROCORR_JS_STANDARDIZE: '1' };
    expect(kernelFromEnv('native', env)).toEqual({ choice: 'native', isa: 'avx2', addon: '/a/b.node', tfjsBackend: 'wasm' });
    expect(kernelFromEnv('tfjs', { NEUROCORR_NATIVE_ISA: '', NEUROCORR_TFJS_BACKEND: '' })).toEqual({ choice: 'tfjs' });
    expect(readEnv(env).jsStandardize).toBe(true);
    expect(readEnv({}).jsStandardize).toBe(false);
    expect(readEnv({ NEUROCORR_PROGRESS_MS: '250', NEUROCORR_TRACE: '1', NEUROCORR_LOG_LEVEL: 'debug' })).toMatchObject({
      progressInterval: 0.25,
      trace: true,
      logLevel: 'debug',
    });
  });

  it('a bad value is a usage error naming the variable and the values it takes', () => {
    expect(() => kernelFromEnv('auto', { NEUROCORR_NATIVE_ISA: 'mmx' })).toThrow(UsageError);
    expect(() => kernelFromEnv('auto', { NEUROCORR_NATIVE_ISA: 'mmx' })).toThrow('NEUROCORR_NATIVE_ISA=mmx is not one of auto, avx512, avx2, scalar');
    expect(() => kernelFromEnv('auto', { NEUROCORR_TFJS_BACKEND: 'webgl' })).toThrow('NEUROCORR_TFJS_BACKEND=webgl is not one of gpu, node, wasm, cpu');
    const r = neurocorr(['score', fDir, gDir, '--json'], { NEUROCORR_NATIVE_ISA: 'mmx' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/error: NEUROCORR_NATIVE_ISA=mmx is not one of auto, avx512, avx2, scalar/);
    expect(r.stdout).toBe('');
  });

  it('NEUROCORR_NATIVE_ISA forces the SIMD variant, with the same scores', () => {
    const best = JSON.parse(neurocorr(['score', fDir, gDir, '--json']).stdout);
    const scalar = neurocorr(['score', fDir, gDir, '--json'], { NEUROCORR_NATIVE_ISA: 'scalar' });
    expect(scalar.status, scalar.stderr).toBe(0);
    expect(JSON.parse(scalar.stdout).kernel).toBe('native-scalar');
    expect(JSON.parse(scalar.stdout).scores).toEqual(best.scores);
  });
});

describe('progress', () => {
  it('prints plain periodic lines on a non-TTY stderr', () => {
    const r = neurocorr(['score', fDir, gDir, '--tile', '1', '--kernel', 'reference'], { NEUROCORR_PROGRESS_MS: '0' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/progress: \d+\/\d+ tiles \d+%/);
    expect(r.stderr).not.toMatch(/\r/);
    expect(neurocorr(['score', fDir, gDir, '--tile', '1', '--no-progress'], { NEUROCORR_PROGRESS_MS: '0' }).stderr).not.toMatch(/progress:/);
  });
});

describe('input formats end to end', () => {
  it('a .safetensors file scores bit-identically to the same layers as .npy', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nc-st-')), 'f.safetensors');
    // Tensor names sort differently from the metadata order, which must win.
    const tensors = F.layers.map((l, i) => ({ name: `z${9 - i}`, shape: l.shape, data: Float32Array.from(l.data) }));
    writeFileSync(file, encodeSafetensors(tensors, { layers: JSON.stringify(tensors.map((t) => t.name)) }));
    const a = neurocorr(['score', fDir, gDir, '--json', '--kernel', 'reference']);
    const b = neurocorr(['score', file, gDir, '--json', '--kernel', 'reference']);
    expect(b.status, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).scores).toEqual(JSON.parse(a.stdout).scores);
  });

  it('layers.json depths drive the depth penalty', () => {
    const dir = writeNpyDir(F);
    writeFileSync(
      join(dir, 'layers.json'),
      JSON.stringify({
        layers: [
          { file: 'layer00.npy', name: 'stem', depth: 0 },
          { file: 'layer01.npy', depth: 3 },
        ],
      }),
    );
    const r = neurocorr(['score', dir, gDir, '--json', '--kernel', 'reference']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const expected = bruteForce(bruteLayers(F, 'units', [0, 3]), bruteLayers(G));
    expect(report.scores.paper.symmetric).toBeCloseTo(expected.symmetric.paper, 6);
    expect(report.scores.penalized.symmetric).toBeCloseTo(expected.symmetric.penalized, 6);
    expect(report.layers[0].name).toBe('stem');
  });
});
