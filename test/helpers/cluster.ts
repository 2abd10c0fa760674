/** Coordinator and worker processes for the cluster tests: real OS processes running the real CLI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './servers.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'neurocorr.js');

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Exit code, or the signal's name when killed. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<CliProcess>();

export function spawnCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const proc: CliProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal = 'SIGKILL') => void child.kill(signal),
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

export function startWorker(nats: string, env: Record<string, string> = {}, extra: string[] = []): CliProcess {
  // The test data lives under the OS temp folder: the workers may read paths there.
  return spawnCli(['worker', '--nats', nats, '--threads', '1', '--data-root', tmpdir(), '--cache-dir', join(tmpdir(), 'neurocorr-test-cache'), ...extra], env);
}

/** Resolves once the worker has logged that it is ready. */
export async function ready(worker: CliProcess, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!worker.stderr().includes('"worker ready"')) {
    if (Date.now() > until) throw new Error(`worker not ready after ${timeoutMs} ms:\n${worker.stderr()}`);
    await sleep(50);
  }
}

export async function killAll(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill('SIGKILL');
  await Promise.all(all.map((p) => p.exited));
}

/** Polls until `probe` returns true. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface CoordinatorArgs {
  readonly f: string;
  readonly g: string;
  readonly nats: string;
  readonly redis: string;
  readonly job: string;
  readonly prefix: string;
  readonly tile: number;
  readonly checkpointTiles: number;
  readonly checkpointSeconds: number;
  readonly extra?: readonly string[];
}

/** A cluster `score` with the tests' fast fault settings: ack wait 1 s, lease 2 s, frequent checkpoints. */
export function coordinatorArgs(o: CoordinatorArgs): string[] {
  return [
    'score',
    o.f,
    o.g,
    '--nats',
    o.nats,
    '--redis',
    o.redis,
    '--job',
    o.job,
    '--prefix',
    o.prefix,
    '--tile',
    String(o.tile),
    '--json',
    '--no-progress',
    '--ack-wait',
    '1',
    '--checkpoint-tiles',
    String(o.checkpointTiles),
    '--checkpoint-seconds',
    String(o.checkpointSeconds),
    '--lease',
    '2',
    ...(o.extra ?? []),
  ];
}

/** A job name and Redis key prefix of their own for each call, so no two tests share keys. */
export function jobNames(tag: string): () => { job: string; prefix: string } {
  let counter = 0;
  return () => {
    counter++;
    return { job: `${tag}-${process.pid}-${counter}`, prefix: `nc-${tag}-${process.pid}-${counter}` };
  };
}

/** The servers of a cluster test file, and a Redis client on its redis-server. */
export interface ClusterServers {
  readonly nats: NatsServer;
  readonly redisServer: RedisServer;
  readonly redis: Redis;
}

/**
 * Registers a cluster test file's hooks: a nats-server and a redis-server on
 * OS-picked ports (and a client) before its tests, every CLI process killed
 * after each test, everything stopped after the file. Its fields are there
 * once the file's tests run.
 */
export function useClusterServers(): ClusterServers {
  let started: ClusterServers | null = null;
  const get = (): ClusterServers => {
    if (started === null) throw new Error('the cluster servers start in beforeAll: use them inside hooks and tests');
    return started;
  };
  beforeAll(async () => {
    const [nats, redisServer] = await Promise.all([startNats(), startRedis()]);
    const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    // Some tests restart redis-server under the client.
    redis.on('error', () => undefined);
    started = { nats, redisServer, redis };
  });
  afterEach(killAll);
  afterAll(async () => {
    started?.redis.disconnect();
    await killAll();
    await stopAllServers();
  });
  return {
    get nats() {
      return get().nats;
    },
    get redisServer() {
      return get().redisServer;
    },
    get redis() {
      return get().redis;
    },
  };
}
