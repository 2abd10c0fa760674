/** The real-server harness in helpers/servers.ts: nats-server with JetStream and redis-server, restart and cleanup. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startNats, startRedis, stopAllServers, type NatsServer } from './helpers/servers.js';

afterEach(stopAllServers);
afterAll(stopAllServers);

/** Server processes that are direct children of this test process, as `pid name`. */
function childServers(): string[] {
  const ps = spawnSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /(nats|redis)-server/.test(line));
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Publishes `body` to a new file-storage stream `name` (subject `<name>.x`) and returns its sequence number. */
async function publishToNewStream(server: NatsServer, name: string, body: string): Promise<number> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name, subjects: [`${name}.x`], storage: StorageType.File });
    const ack = await jetstream(nc).publish(`${name}.x`, body);
    return ack.seq;
  } finally {
    await nc.close();
  }
}

async function readStream(server: NatsServer, name: string, seq: number): Promise<{ messages: number; body: string | undefined }> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(name);
    const msg = await jsm.streams.getMessage(name, { seq });
    return { messages: info.state.messages, body: msg?.string() };
  } finally {
    await nc.close();
  }
}

describe('startNats', () => {
  it('keeps the port and the JetStream file store across restart()', async () => {
    const server = await startNats();
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);

    const seq = await publishToNewStream(server, 'KEEP', 'hello');
    expect(seq).toBe(1);

    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(await readStream(server, 'KEEP', seq)).toEqual({ messages: 1, body: 'hello' });
    expect(existsSync(join(server.storeDir, 'jetstream'))).toBe(true);
  });

  it('uses a caller-owned storeDir and leaves it in place on stop()', async () => {
    const storeDir = mkdtempSync(join(tmpdir(), 'test-nats-store-'));
    try {
      const first = await startNats({ storeDir });
      expect(first.storeDir).toBe(storeDir);
      const seq = await publishToNewStream(first, 'SHARED', 'kept');
      await first.stop();
      expect(existsSync(storeDir)).toBe(true);

      const second = await startNats({ storeDir });
      expect(await readStream(second, 'SHARED', seq)).toEqual({ messages: 1, body: 'kept' });
    } finally {
      await stopAllServers();
      rmSync(storeDir, { recursive: true, force: true });
    }
  });
});

describe('startRedis', () => {
  it('answers on the same port after restart(), with the data gone', async () => {
    const server = await startRedis();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);

    const before = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      await before.set('k', 'v');
      expect(await before.get('k')).toBe('v');
    } finally {
      before.disconnect();
    }

    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);

    const after = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await after.ping()).toBe('PONG');
      expect(await after.get('k')).toBeNull();
    } finally {
      after.disconnect();
    }
  });
});

describe('stop()', () => {
  it('ends the processes, frees the ports and removes the temp dirs', async () => {
    const nats = await startNats();
    const redis = await startRedis();
    const natsDir = dirname(nats.storeDir);
    const natsPid = Number(/^nats-server_(\d+)\.ports$/.exec(readdirSync(natsDir).find((f) => f.endsWith('.ports')) ?? '')?.[1]);
    expect(natsPid).toBeGreaterThan(0);
    expect(childServers()).toHaveLength(2);

    await Promise.all([nats.stop(), redis.stop()]);
    await nats.stop(); // idempotent

    expect(childServers()).toEqual([]);
    expect(() => process.kill(natsPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(existsSync(natsDir)).toBe(false);
    expect(await acceptsConnections(nats.port)).toBe(false);
    expect(await acceptsConnections(redis.port)).toBe(false);
    await expect(redis.restart()).rejects.toThrow(/after stop/);
  });

  it('stopAllServers() stops every server still running', async () => {
    await Promise.all([startNats(), startRedis(), startRedis()]);
    expect(childServers()).toHaveLength(3);
    await stopAllServers();
    expect(childServers()).toEqual([]);
  });
});

describe('missing binaries', () => {
  it('says what to install', async () => {
    process.env['NEUROCORR_TOOLS_PATH'] = join(tmpdir(), 'no-such-dir');
    try {
      await expect(startNats()).rejects.toThrow(
        /nats-server >= 2\.9\.0 \(NATS with JetStream, for the cluster tests\): not found[\s\S]*apt-get install -y nats-server/,
      );
      await expect(startRedis()).rejects.toThrow(
        /redis-server >= 6\.0\.0 \(Redis, for the cluster job state\): not found[\s\S]*apt-get install -y redis-server/,
      );
    } finally {
      delete process.env['NEUROCORR_TOOLS_PATH'];
    }
  });
});
