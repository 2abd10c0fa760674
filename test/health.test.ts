/**
 * What a Kubernetes deployment relies on: the worker's /healthz and /readyz
 * (liveness from the start, readiness only with a kernel and a NATS
 * connection) and `neurocorr queue-init`, which creates the work queue an
 * autoscaler watches before any worker or coordinator runs.
 */
import { AckPolicy, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, startWorker, killAll, waitFor } from './helpers/cluster.js';
import { startNats, stopAllServers, type NatsServer, freePort } from './helpers/servers.js';

let nats: NatsServer;

beforeAll(async () => {
  nats = await startNats();
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await stopAllServers();
});

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
