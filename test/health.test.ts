/**
 * What a Kubernetes deployment relies on: the worker's /healthz and /readyz
 * (liveness from the start, readiness only with a kernel and a NATS
 * connection), `neurocorr queue-init`, which creates the work queue an
 * autoscaler watches before any worker or coordinator runs, and processes
 * that end when told to, or when NATS fails them, whatever NATS does.
 */
import { AckPolicy, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, startWorker, killAll, ready, waitFor, type CliProcess } from './helpers/cluster.js';
import { startNats, startSilentServer, stopAllServers, type NatsServer, freePort } from './helpers/servers.js';

const DIST = join(import.meta.dirname, '..', 'dist');

let nats: NatsServer;

beforeAll(async () => {
  nats = await startNats();
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await stopAllServers();
});

/** The process's exit code, or 'still running' after `ms`. */
function exitWithin(p: CliProcess, ms: number): Promise<number | string> {
  return Promise.race([p.exited, sleep(ms).then(() => 'still running')]);
}

async function probe(port: number, path: string): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.text()).trim() };
  } catch {
    return null;
  }
}

describe('worker probes', () => {
  it('/healthz answers while NATS is unreachable; /readyz is 503 until NATS and the kernel are up, then 200', async () => {
    const port = await freePort();
    nats.signal('SIGSTOP'); // the port accepts, the server says nothing: the worker is still connecting
    try {
      startWorker(nats.url, {}, ['--metrics-port', String(port), '--service-timeout', '60']);
      await waitFor('/healthz', async () => (await probe(port, '/healthz'))?.status === 200, 20_000);
      expect(await probe(port, '/readyz')).toEqual({ status: 503, body: 'connecting to NATS' });
    } finally {
      nats.signal('SIGCONT');
    }
    await waitFor('/readyz 200', async () => (await probe(port, '/readyz'))?.status === 200, 60_000);
    expect(await probe(port, '/readyz')).toEqual({ status: 200, body: 'ready' });
    const metrics = await probe(port, '/metrics');
    expect(metrics?.status).toBe(200);
    expect(metrics?.body).toContain('neurocorr_');
    expect((await probe(port, '/nope'))?.status).toBe(404);
  });

  it('a SIGTERM during start-up drains the worker once it is up: exit 0, not a kill', async () => {
    const port = await freePort();
    nats.signal('SIGSTOP');
    let worker;
    try {
      worker = startWorker(nats.url, {}, ['--metrics-port', String(port)]);
      await waitFor('/healthz', async () => (await probe(port, '/healthz'))?.status === 200, 20_000);
      worker.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      nats.signal('SIGCONT');
    }
    expect(await worker.exited, worker.stderr()).toBe(0);
    expect(worker.stderr()).toContain('worker stopped');
  });

  it('a drained worker exits 0', async () => {
    const port = await freePort();
    const worker = startWorker(nats.url, {}, ['--metrics-port', String(port)]);
    await waitFor('/readyz 200', async () => (await probe(port, '/readyz'))?.status === 200, 30_000);
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(worker.stderr()).toContain('worker stopped');
  });
});

describe('neurocorr queue-init', () => {
  it("creates the streams and the job bucket, and removes an older version's shared consumer; a second run changes nothing", async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      // What an older version left: one consumer for every job, which a work-queue stream lets no job consumer beside.
      await jsm.streams.add({ name: 'NEUROCORR_TILES', subjects: ['neurocorr.tiles.>'], retention: RetentionPolicy.Workqueue });
      await jsm.consumers.add('NEUROCORR_TILES', { durable_name: 'neurocorr-workers', ack_policy: AckPolicy.Explicit, filter_subject: 'neurocorr.tiles.>' });
      const first = spawnCli(['queue-init', '--nats', nats.url, '--json']);
      expect(await first.exited, first.stderr()).toBe(0);
      expect(JSON.parse(first.stdout())).toEqual({ streams: ['NEUROCORR_TILES', 'NEUROCORR_RESULTS'], bucket: 'neurocorr-jobs', created: true });
      const second = spawnCli(['queue-init', '--nats', nats.url]);
      expect(await second.exited, second.stderr()).toBe(0);
      expect(second.stdout()).toBe(
        "work queue ready: streams NEUROCORR_TILES and NEUROCORR_RESULTS, job bucket neurocorr-jobs (each job's coordinator adds its own tile consumer)\n",
      );
      const consumers: string[] = [];
      for await (const c of jsm.consumers.list('NEUROCORR_TILES')) consumers.push(c.name);
      expect(consumers).toEqual([]);
      expect((await jsm.streams.info('NEUROCORR_RESULTS')).config.name).toBe('NEUROCORR_RESULTS');
      expect((await jsm.streams.info('KV_neurocorr-jobs')).config.name).toBe('KV_neurocorr-jobs');
    } finally {
      await nc.close();
    }
  });

  it('an unreachable NATS is a bounded retry and exit 3, with the password kept out of the message', async () => {
    const port = await freePort();
    const run = spawnCli(['queue-init', '--nats', `nats://127.0.0.1:${port}`, '--nats-user', 'ops', '--service-timeout', '1'], {
      NEUROCORR_NATS_PASSWORD: 's3cret-pw',
    });
    expect(await run.exited).toBe(3);
    expect(run.stderr()).toMatch(/NATS/);
    expect(run.stderr()).not.toContain('s3cret-pw');
  });
});

describe('NATS that stops answering (issue 23)', () => {
  it.each([
    ['queue-init', []],
    ['worker', ['--metrics-port', '0', '--threads', '1']],
  ])('%s against a port that accepts and never answers: exit 3 at the service timeout, and the process ends', async (command, extra) => {
    const silent = await startSilentServer();
    try {
      const run = spawnCli([command, '--nats', `nats://127.0.0.1:${silent.port}`, '--service-timeout', '1', ...extra]);
      expect(await exitWithin(run, 15_000), run.stderr()).toBe(3);
      expect(run.stderr()).toContain(`cannot reach NATS at nats://127.0.0.1:${silent.port} within 1 s`);
      expect(silent.accepted).toBeGreaterThan(0);
    } finally {
      await silent.stop();
    }
  });

  it('connectNats and connectRedis against such a port leave nothing open: a process that only tried exits by itself', async () => {
    const silent = await startSilentServer();
    const script = `
      import { connectNats } from '${join(DIST, 'shared', 'nats', 'index.js')}';
      import { connectRedis } from '${join(DIST, 'coordinator', 'cluster', 'redis.js')}';
      import { createLogger } from '${join(DIST, 'shared', 'observe.js')}';
      const service = (scheme) => ({ url: scheme + '://127.0.0.1:${silent.port}', timeoutMs: 1000, option: scheme });
      await connectNats(service('nats'), 'probe').catch((err) => console.log(err.message));
      await connectRedis(service('redis'), createLogger('probe', 'silent')).catch((err) => console.log(err.message));`;
    try {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      const code = await Promise.race([exited, sleep(15_000).then(() => 'still running')]);
      child.kill('SIGKILL');
      expect(code, out).toBe(0);
      expect(out).toMatch(/cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+ within 1 s[^\n]*\ncannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ within 1 s/);
    } finally {
      await silent.stop();
    }
  });

  it('a worker whose NATS stays paused past --service-timeout exits 3, and the process ends', async () => {
    const own = await startNats();
    try {
      const worker = startWorker(own.url, {}, ['--service-timeout', '2']);
      await ready(worker);
      own.signal('SIGSTOP');
      // Pings notice the pause within 3 s, then the worker waits out the service timeout.
      expect(await exitWithin(worker, 30_000), worker.stderr()).toBe(3);
      expect(worker.stderr()).toMatch(/lost NATS at nats:\/\/127\.0\.0\.1:\d+ for more than 2 s/);
    } finally {
      own.signal('SIGCONT');
      await own.stop();
    }
  });

  it.each(['paused', 'killed'])('a worker whose NATS is %s drains on SIGTERM at once: exit 0 (its tiles in flight go to other workers)', async (how) => {
    const own = await startNats();
    try {
      const worker = startWorker(own.url, {}, ['--service-timeout', '60']);
      await ready(worker);
      own.signal(how === 'paused' ? 'SIGSTOP' : 'SIGKILL');
      await sleep(500);
      const signalled = Date.now();
      worker.kill('SIGTERM');
      expect(await exitWithin(worker, 20_000), worker.stderr()).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(8_000);
      expect(worker.stderr()).toContain('worker stopped');
    } finally {
      own.signal('SIGCONT');
      await own.stop();
    }
  });
});
