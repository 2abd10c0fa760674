/**
 * The package as a dependency sees it (issue 24): importing it changes
 * nothing in the process, every type its API names is exported, and
 * test-only hooks are not part of it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startWorker } from 'neurocorr';
import type {
  ChanceLevel,
  ClusterOptions,
  KernelOptions,
  NatsCredentials,
  Preprocess,
  RedisCredentials,
  Scope,
  StreamStatsInfo,
  TfjsBackend,
  TlsFiles,
  WorkerOptions,
} from 'neurocorr';
import { publicOptionTypes } from './helpers/public-types.js';

const ROOT = join(import.meta.dirname, '..');

/** Runs an ES module in a fresh node process and returns what it printed as JSON. */
function fresh(code: string, args: string[] = []): unknown {
  const r = spawnSync(process.execPath, [...args, '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as unknown;
}

describe('importing the package has no side effects', () => {
  it('no V8 flag (gc stays hidden, in this context and in new ones), no listeners, no handles, no environment change', () => {
    const seen = fresh(`
      import { runInNewContext } from 'node:vm';
      const events = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'uncaughtException', 'unhandledRejection', 'warning'];
      const state = () => ({
        gc: typeof globalThis.gc,
        contextGc: runInNewContext('typeof gc'),
        listeners: events.map((e) => process.listenerCount(e)),
        // Less the standard streams, which node:assert (loaded by a dependency) opens.
        handles: process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap'),
        env: JSON.stringify(process.env),
        cwd: process.cwd(),
      });
      // Once the loader's file reads have settled.
      const settled = () => new Promise((resolve) => setTimeout(resolve, 100));
      await settled();
      const before = state();
      const api = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
      await settled();
      console.log(JSON.stringify({ before, after: state(), exports: Object.keys(api).length }));
    `) as { before: Record<string, unknown>; after: Record<string, unknown>; exports: number };
    expect(seen.exports).toBeGreaterThan(10);
    expect(seen.before).toMatchObject({ gc: 'undefined', contextGc: 'undefined' });
    expect(seen.after).toEqual(seen.before);
  });

  it('a collection exposes gc only for itself: the flag is set back, and a process started with --expose-gc keeps its own', () => {
    const code = `
      import { runInNewContext } from 'node:vm';
      const { collectGarbage } = await import(${JSON.stringify(join(ROOT, 'dist', 'shared', 'formats', 'index.js'))});
      let garbage = Array.from({ length: 64 }, () => new Uint8Array(1 << 20));
      const held = process.memoryUsage().arrayBuffers;
      garbage = null;
      collectGarbage();
      collectGarbage();
      console.log(JSON.stringify({ held, after: process.memoryUsage().arrayBuffers, gc: typeof globalThis.gc, contextGc: runInNewContext('typeof gc') }));
    `;
    const plain = fresh(code) as { held: number; after: number; gc: string; contextGc: string };
    expect(plain.held).toBeGreaterThanOrEqual(64 << 20);
    expect(plain.after).toBeLessThan(16 << 20);
    expect(plain).toMatchObject({ gc: 'undefined', contextGc: 'undefined' });
    expect(fresh(code, ['--expose-gc'])).toMatchObject({ gc: 'function', contextGc: 'function' });
  });
});

describe('the public types', () => {
  it('every type the exported API names (options, results, errors) is exported from index.ts', () => {
    const { exported, used } = publicOptionTypes();
    // The walk reaches the option types nested in options objects.
    for (const name of [
      'ScoreOptions',
      'ClusterOptions',
      'KernelOptions',
      'NatsCredentials',
      'RedisCredentials',
      'TlsFiles',
      'WorkerOptions',
      'ZooModelInput',
    ]) {
      expect(used.has(name), name).toBe(true);
    }
    const missing = [...used].filter(([name]) => !exported.has(name)).map(([name, from]) => `${name} (used by ${from})`);
    expect(missing).toEqual([]);
  });

  it('options can be written with the exported types alone', () => {
    const tls: TlsFiles = { ca: '/etc/ca.pem' };
    const nats: NatsCredentials = { user: 'w', password: 'p', tls };
    const redis: RedisCredentials = { username: 'c', password: 'p' };
    const backend: TfjsBackend = 'cpu';
    const kernel: KernelOptions = { choice: 'tfjs', tfjsBackend: backend };
    const cluster: ClusterOptions = { nats: 'nats://h:4222', redis: 'redis://h:6379', natsCredentials: nats, redisCredentials: redis };
    const worker: WorkerOptions = { nats: 'nats://h:4222', natsCredentials: nats, kernel };
    const names: [Preprocess, Scope, keyof ChanceLevel, keyof StreamStatsInfo] = ['tf', 'full', 'symmetric', 'peakBytes'];
    expect([cluster.natsCredentials, worker.kernel, names[1]]).toEqual([nats, kernel, 'full']);
  });

  it('fault injection is not a worker option: the type refuses it, and startWorker too, before it connects', async () => {
    // @ts-expect-error: faults are injected only by the CLI's worker (NEUROCORR_WORKER_FAULT), not through the library.
    const options: WorkerOptions = { nats: 'nats://127.0.0.1:1', fault: 'lie' };
    const err = await startWorker(options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/^options has no option "fault"/);
  });
});
