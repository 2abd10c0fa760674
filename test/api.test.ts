/** The library API through its public import (`neurocorr`, package.json exports): options validated at the edge, a score, the report type, typed errors. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NeurocorrError } from 'neurocorr';
import {
  InputError,
  ServiceError,
  plan,
  prepare,
  score,
  startWorker,
  UsageError,
  type PlanOptions,
  type Report,
  type ScoreOptions,
  type ScoreResult,
} from 'neurocorr';

const ROOT = join(import.meta.dirname, '..');
const F = join(ROOT, 'examples', 'mlp');
const G = join(ROOT, 'examples', 'cnn');

/** Calls with options a TypeScript caller could not write: plain JavaScript callers can. */
const loose = <T>(options: Record<string, unknown>): T => options as unknown as T;

describe('public API', () => {
  it('scores through the public import, and the report matches the CLI bit for bit', async () => {
    const result: ScoreResult = await score({ f: F, g: G, threads: 2, kernel: 'native' });
    const report: Report = result.report;
    expect(report.models).toEqual({ F, G });
    expect(report.neurons).toEqual([200, 464]);
    expect(report.scores.paper.symmetric).toBeGreaterThan(0);
    expect(report.null?.permutations).toBe(10);
    expect(result.summary).toMatch(/score \(paper, symmetric\)/);
    const cli = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), 'score', F, G, '--json', '--threads', '2', '--no-progress'], {
      encoding: 'utf8',
    });
    const fromCli = JSON.parse(cli.stdout) as Report;
    expect(fromCli.scores).toEqual(report.scores);
    expect(fromCli.null?.scores).toEqual(report.null?.scores);
  });

  it.each([
    [{ f: F }, TypeError, /options\.g must be a non-empty string, got undefined/],
    [{ f: F, g: G, threads: 0 }, RangeError, /options\.threads must be from 1 to 1024, got 0/],
    [{ f: F, g: G, threads: '2' }, TypeError, /options\.threads must be an integer, got "2"/],
    [{ f: F, g: G, threads: 1.5 }, TypeError, /options\.threads must be an integer, got 1\.5/],
    [{ f: F, g: G, match: 'best' }, RangeError, /options\.match must be one of paper, penalized, got "best"/],
    [{ f: F, g: G, null: { permutations: -1 } }, RangeError, /options\.null\.permutations must be from 0 to 1000, got -1/],
    [{ f: F, g: G, null: { sampel: 3 } }, TypeError, /options\.null has no option "sampel"/],
    [{ f: F, g: G, layers: [] }, RangeError, /options\.layers must name at least one layer/],
    [{ f: F, g: G, sample: { n: 0 } }, RangeError, /options\.sample\.n must be >= 1, got 0/],
    [{ f: F, g: G, tile: -3 }, RangeError, /options\.tile must be >= 1, got -3/],
    [{ f: F, g: G, log: 'stderr' }, TypeError, /options\.log must be a function/],
    [{ f: F, g: G, treads: 2 }, TypeError, /options has no option "treads"/],
    [{ f: F, g: G, cluster: { nats: 'nats://x' } }, TypeError, /options\.cluster\.redis must be a non-empty string/],
    [{ f: F, g: G, cluster: { nats: 'nats://x', redis: 'redis://x', ackWait: 0 } }, RangeError, /options\.cluster\.ackWait must be from 0\.5 to 86400, got 0/],
  ])('score(%j) rejects with a %s naming the option', async (options, type, message) => {
    const err = await score(loose<ScoreOptions>(options)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(message);
  });

  it('plan, prepare and startWorker validate their options the same way', async () => {
    // A TypeError or RangeError that also names the option's path: the CLI names its flag from it (exit 2).
    const planned = await plan(loose<PlanOptions>({ f: F, g: G, kernel: 'gpu' })).catch((e: unknown) => e);
    expect(planned).toBeInstanceOf(RangeError);
    expect(planned).toMatchObject({
      code: 'E_OPTION_RANGE',
      option: 'kernel',
      message: 'options.kernel must be one of auto, native, tfjs, reference, got "gpu"',
    });
    expect(() => prepare(loose({ input: F, out: '/tmp/x', memory: '1GiB' }))).toThrow(
      expect.objectContaining({ code: 'E_OPTION_TYPE', option: 'memory', message: 'options.memory must be an integer, got "1GiB"' }) as Error,
    );
    expect(() => prepare(loose({ input: F }))).toThrow(TypeError);
    const worker = await startWorker(loose({ nats: 'nats://127.0.0.1:1', inflight: 0 })).catch((e: unknown) => e);
    expect(worker).toBeInstanceOf(RangeError);
    expect(worker).toMatchObject({ code: 'E_OPTION_RANGE', option: 'inflight', message: 'options.inflight must be from 1 to 4096, got 0' });
  });

  it('a worker runs at most 4 threads per core and refuses more than 8 tiles in flight per thread (exit 2), before it connects', async () => {
    const { workerSettings } = await import('../dist/worker/cluster/options.js');
    const nats = 'nats://127.0.0.1:1';
    const cap = 4 * availableParallelism();
    expect(workerSettings({ nats, threads: 1024 })).toMatchObject({ threads: cap, inflight: 2 * cap });
    const err = await startWorker({ nats, threads: 1024, inflight: 4096, serviceTimeout: 0.5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as NeurocorrError).exitCode).toBe(2);
    const message = `inflight 4096 holds more than 8 tiles per kernel thread for ${cap} thread(s) (1024 asked for, capped at 4 per core)`;
    expect((err as NeurocorrError).message).toContain(message);
    const cli = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), 'worker', '--nats', nats, '--threads', '1024', '--inflight', '4096'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(cli.status, cli.stderr).toBe(2);
    expect(cli.stderr).toContain(`--${message}: the rest would only wait, holding their leases; give --inflight ${8 * cap} or fewer`);
  });

  it('messages name options as the library spells them (the CLI renames them to flags)', async () => {
    const err = await score({ f: F, g: G, probes: 999 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as NeurocorrError).message).toMatch(/^probes 999 is out of range/);
    expect((err as NeurocorrError).describe((o) => `--${o}`)).toMatch(/^--probes 999 is out of range/);
    expect((err as NeurocorrError).exitCode).toBe(2);
  });

  it('typed errors carry a code, an exit code and a cause', async () => {
    const missing = await score({ f: join(tmpdir(), 'nc-no-such-set'), g: G }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InputError);
    expect(missing).toMatchObject({ code: 'E_INPUT_MISSING', exitCode: 2 });
    const down = await score({ f: F, g: G, cluster: { nats: 'nats://127.0.0.1:1', redis: 'redis://127.0.0.1:1' } }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(ServiceError);
    expect(down).toMatchObject({ code: 'E_SERVICE', exitCode: 3, service: 'NATS' });
    expect((down as Error).cause).toBeDefined();
  });

  it('prepare through the public import writes a shard set that scores the same', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nc-api-')), 'F');
    const result = prepare({ input: F, out, shardNeurons: 64 });
    expect(result.shards).toBeGreaterThan(1);
    const a = await score({ f: F, g: G, null: { permutations: 0 } });
    const b = await score({ f: out, g: G, null: { permutations: 0 } });
    expect(b.report.scores).toEqual(a.report.scores);
  });
});
