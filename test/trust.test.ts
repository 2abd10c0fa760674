/**
 * Cluster mode's trust boundary, against real servers: workers treat what
 * arrives over NATS as untrusted, credentials never leak, only coordinators
 * may submit work, and a job name is bound to its inputs. Each test is a
 * finding of a hostile review (issue 11, findings 1 to 4).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeResult, encodeTile, jobResults, specId, tileSubject, type JobSpec } from '../dist/shared/cluster/index.js';
import { ensureStreams, ensureTileConsumer } from '../dist/shared/nats/index.js';
import { defaultCacheDir } from '../dist/worker/cluster/worker.js';
import { killAll, ready, spawnCli, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './helpers/servers.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const latent = latents(91, 16, 3);
const fDir = writeNpyDir(genModel(92, { m: 16, layers: [[40], [30]], latent }));
const gDir = writeNpyDir(genModel(93, { m: 16, layers: [[50]], latent }));
const SECRET_N = 'n4ts-S3CRET-pw';
const SECRET_R = 'r3dis-S3CRET-pw';

let scratch: string;
let counter = 0;
const job = () => `trust-${process.pid}-${++counter}`;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'nc-trust-'));
});
afterEach(killAll);
afterAll(stopAllServers);

function embedded(f = fDir, g = gDir): unknown {
  const r = spawnSync(process.execPath, [BIN, 'score', f, g, '--json', '--no-progress', '--null', '0'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { scores: unknown }).scores;
}

async function worker(nats: string, extra: string[], env: Record<string, string> = {}): Promise<CliProcess> {
  const w = spawnCli(['worker', '--nats', nats, '--threads', '1', ...extra], env);
  await ready(w);
  return w;
}

describe('workers treat what they receive as untrusted (finding 1)', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNats();
  });

  /** Puts a spec in the job bucket, publishes its tile 0, and returns the failure the worker sends back. */
  async function hostileJob(spec: Omit<JobSpec, 'job'>): Promise<string> {
    const name = job();
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).create('neurocorr-jobs', { history: 1 });
      await kv.put(name, JSON.stringify({ ...spec, job: name }));
      // What a coordinator sets up for its job: the streams and the job's tile consumer.
      const jsm = await jetstreamManager(nc);
      await ensureStreams(jsm);
      await ensureTileConsumer(jsm, name, { ackWaitMs: 30_000, maxDeliver: 5 });
      const results = nc.subscribe(jobResults(name), { max: 1 });
      await jetstream(nc).publish(
        tileSubject(name),
        encodeTile(name, specId(JSON.stringify({ ...spec, job: name })), {
          kind: 'main',
          id: 0,
          pair: 0,
          f: { layer: 0, start: 0, count: 1 },
          g: { layer: 0, start: 0, count: 1 },
        }),
      );
      for await (const msg of results) {
        const decoded = decodeResult(msg.data);
        if (decoded.kind === 'failure') return decoded.error;
        throw new Error('the hostile tile was computed');
      }
      throw new Error('no answer');
    } finally {
      await nc.close();
    }
  }

  const base = {
    version: 4,
    pairs: [{ f: 0, g: 1 }],
    options: { conv: 'units', layers: null, layersF: null, layersG: null, sample: null, probes: null },
    m: 16,
    n: [70, 50],
    block: 16,
    span: 1,
    partEntries: 1000,
    tiles: 16,
    nulls: [{ permutations: 0, sample: 0, seed: 1 }],
  } as const;

  it('object names that climb out of the cache, and paths outside the data roots, are refused; nothing is written outside the cache; no file content comes back', async () => {
    const cache = join(scratch, 'cache-a');
    const outside = join(scratch, 'outside');
    mkdirSync(outside);
    const secret = join(outside, 'secret.json');
    writeFileSync(secret, 'DB_PASSWORD=hunter2\n');
    // Inside the data root, a folder whose layers.json holds a secret: the error names the file, never what it holds.
    const inside = join(scratch, 'data', 'leaky');
    mkdirSync(inside, { recursive: true });
    writeFileSync(join(inside, 'layers.json'), 'DB_PASSWORD=hunter2\n');
    writeFileSync(join(inside, 'a.npy'), readFileSync(join(fDir, 'layer00.npy')));
    await worker(nats.url, ['--data-root', join(scratch, 'data'), '--cache-dir', cache]);
    const object = (set: string, path: string) => ({
      kind: 'object',
      bucket: 'neurocorr-files',
      set,
      root: 'x',
      files: [{ path, size: 4, sha256: 'a'.repeat(64) }],
    });
    const attempts = [
      object('../../escape-check', 'x/a.npy'),
      object('a'.repeat(64), 'x/../../../outside/pwned.txt'),
      object('a'.repeat(64), '/etc/passwd'),
      { kind: 'path', path: secret, fingerprint: '' },
      { kind: 'path', path: '/etc', fingerprint: '' },
      { kind: 'path', path: '/no/such/place', fingerprint: '' },
      { kind: 'path', path: inside, fingerprint: '' },
    ];
    const answers: string[] = [];
    for (const ref of attempts)
      answers.push(await hostileJob({ ...base, inputs: [ref as JobSpec['inputs'][number], ref as JobSpec['inputs'][number]] } as Omit<JobSpec, 'job'>));
    expect(answers.pop()).toMatch(/layers\.json: invalid JSON \(a JSON syntax error( at character \d+)?\)/);
    for (const answer of answers) {
      expect(answer).toMatch(/refused|reads no shared paths|outside this worker's data roots/);
      expect(answer).not.toContain('DB_PASSWORD');
      expect(answer).not.toContain('hunter2');
    }
    // Outside the roots, existing and missing paths get the same answer: nothing to learn about which exist.
    expect(answers[3]).toBe(answers[5]);
    expect(answers[4]).toBe(answers[5]);
    expect(readdirSync(outside)).toEqual(['secret.json']);
    expect(existsSync(join(scratch, 'escape-check'))).toBe(false);
  });

  it('a forged spec is refused field by field before anything is sized from it: a part size of 0 or -1, 3e7 permutations, a pair beyond the models (issue 23)', async () => {
    await worker(nats.url, ['--data-root', tmpdir(), '--cache-dir', join(scratch, 'cache-spec')]);
    const path = { kind: 'path', path: fDir, fingerprint: '' } as const;
    const spec = (change: Record<string, unknown>) => ({ ...base, inputs: [path, path], ...change }) as unknown as Omit<JobSpec, 'job'>;
    const started = Date.now();
    expect(await hostileJob(spec({ partEntries: 0 }))).toBe("the job's spec is refused: partEntries is 0, not an integer from 1 to 16777216");
    expect(await hostileJob(spec({ partEntries: -1 }))).toMatch(/partEntries is -1, not an integer/);
    expect(await hostileJob(spec({ nulls: [{ permutations: 3e7, sample: 10, seed: 1 }] }))).toMatch(
      /nulls\[0\]\.permutations is 30000000, not an integer from 0 to 1000/,
    );
    expect(await hostileJob(spec({ pairs: [{ f: 0, g: 7 }] }))).toMatch(/pairs\[0\]\.g is 7, not an integer from 0 to 1/);
    expect(await hostileJob(spec({ block: 'x' }))).toMatch(/block is "x"/);
    // Each refused at once: nothing was read, allocated or looped over.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a set under a data root that holds a link to a file outside the roots is refused (issue 23)', async () => {
    const root = join(scratch, 'linked-root');
    const set = join(root, 'set');
    mkdirSync(set, { recursive: true });
    writeFileSync(join(set, 'layer00.npy'), readFileSync(join(fDir, 'layer00.npy')));
    const outside = join(scratch, 'outside-target.npy');
    writeFileSync(outside, readFileSync(join(fDir, 'layer01.npy')));
    symlinkSync(outside, join(set, 'layer01.npy'));
    await worker(nats.url, ['--data-root', root, '--cache-dir', join(scratch, 'cache-links')]);
    const ref = { kind: 'path', path: set, fingerprint: '' } as const;
    expect(await hostileJob({ ...base, inputs: [ref, ref] } as unknown as Omit<JobSpec, 'job'>)).toMatch(
      /holds a link, layer01\.npy, that leads outside this worker's data roots/,
    );
  });

  it('the cache folder is private (0700), and by default in the user cache home, not a predictable name in /tmp (finding 2)', async () => {
    const cache = join(scratch, 'cache-b');
    await worker(nats.url, ['--cache-dir', cache]);
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(defaultCacheDir()).toBe(join(homedir(), '.cache', 'neurocorr'));
  });
});

describe('credentials and permissions (findings 1, 3)', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  const files = () => {
    const dir = join(scratch, 'secrets');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'coordinator'), `${SECRET_N}-c\n`);
    writeFileSync(join(dir, 'worker'), `${SECRET_N}-w\n`);
    return dir;
  };

  beforeAll(async () => {
    [nats, redis] = await Promise.all([
      startNats({
        config: ['include neurocorr-auth.conf'],
        files: { 'neurocorr-auth.conf': join(ROOT, 'deploy', 'nats', 'neurocorr-auth.conf') },
        env: { NEUROCORR_COORDINATOR_PASSWORD: `${SECRET_N}-c`, NEUROCORR_WORKER_PASSWORD: `${SECRET_N}-w` },
      }),
      startRedis({ password: SECRET_R }),
    ]);
  });

  it('a job runs under the shipped permissions with secrets from files and the environment; no secret reaches ps, logs, errors, the report or jobs', async () => {
    const dir = files();
    const w = await worker(nats.url, [
      '--nats-user',
      'worker',
      '--nats-password-file',
      join(dir, 'worker'),
      '--data-root',
      tmpdir(),
      '--cache-dir',
      join(scratch, 'cache-c'),
    ]);
    const name = job();
    const c = spawnCli(
      [
        'score',
        fDir,
        gDir,
        '--nats',
        nats.url,
        '--nats-user',
        'coordinator',
        '--nats-password-file',
        join(dir, 'coordinator'),
        '--redis',
        redis.url,
        '--job',
        name,
        '--json',
        '--null',
        '0',
        '--no-progress',
        '--tile',
        '16',
      ],
      { NEUROCORR_REDIS_PASSWORD: SECRET_R },
    );
    // While both run, their command lines (what ps shows) hold no secret.
    for (const p of [w, c]) {
      const cmdline = existsSync(`/proc/${p.child.pid}/cmdline`) ? readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8') : '';
      expect(cmdline).not.toContain('S3CRET');
    }
    expect(await c.exited, c.stderr()).toBe(0);
    expect((JSON.parse(c.stdout()) as { scores: unknown }).scores).toEqual(embedded());
    const jobs = spawnCli(['jobs', '--redis', redis.url, '--json'], { NEUROCORR_REDIS_PASSWORD: SECRET_R });
    expect(await jobs.exited).toBe(0);
    for (const text of [c.stdout(), c.stderr(), w.stderr(), jobs.stdout(), jobs.stderr()]) expect(text).not.toContain('S3CRET');
  });

  it('a worker may not submit work: no tiles, no job specs, no uploads, no streams', async () => {
    const nc = await connect({ servers: nats.url, user: 'worker', pass: `${SECRET_N}-w` });
    const errors: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
    try {
      const js = jetstream(nc);
      await expect(js.publish(tileSubject('evil'), Uint8Array.of(1))).rejects.toThrow();
      await expect(new Kvm(nc).open('neurocorr-jobs').then((kv) => kv.put('evil', '{}'))).rejects.toThrow();
      nc.publish('$O.neurocorr-files.C.evil', Uint8Array.of(1));
      await nc.flush();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "\$O\.neurocorr-files/);
    } finally {
      await nc.close().catch(() => undefined);
    }
  });

  it('malformed URLs are refused (exit 2) before any connection, and never echo their credentials', async () => {
    const cases = [
      ['score', fDir, gDir, '--nats', nats.url, '--redis', `http://u:${SECRET_R}@127.0.0.1:6379`],
      ['score', fDir, gDir, '--nats', nats.url, '--redis', `redis://u:${SECRET_R}@127.0.0.1:99999`],
      ['score', fDir, gDir, '--nats', `u:${SECRET_N}@127.0.0.1:4222`, '--redis', redis.url],
      ['jobs', '--redis', `u:${SECRET_R}@127.0.0.1:6379`],
    ];
    for (const args of cases) {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--(redis|nats) .*(is not a URL|scheme|port)/);
      expect(`${r.stdout}${r.stderr}`).not.toContain('S3CRET');
    }
  });

  it('a wrong password is exit 3 with a clear message, at once (no retries against a refusal)', async () => {
    const started = Date.now();
    const r = spawnSync(process.execPath, [BIN, 'jobs', '--redis', redis.url], {
      encoding: 'utf8',
      env: { ...process.env, NEUROCORR_REDIS_PASSWORD: 'wrong' },
      timeout: 20_000,
    });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/cannot log in to Redis/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('a job name is bound to its inputs (findings 2, 4)', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  });

  const coordinator = (name: string, f: string, g: string, extra: string[] = []) =>
    spawnCli(['score', f, g, '--nats', nats.url, '--redis', redis.url, '--job', name, '--json', '--null', '0', '--no-progress', '--tile', '16', ...extra]);

  it("a finished job's name with other inputs is exit 2 naming the difference and the way out; with the same inputs its stored report is returned and written", async () => {
    const w = await worker(nats.url, ['--data-root', tmpdir()]);
    const name = job();
    const first = coordinator(name, fDir, gDir);
    expect(await first.exited, w.stderr()).toBe(0);
    const otherG = writeNpyDir(genModel(94, { m: 16, layers: [[20]], latent }));
    const out = join(scratch, 'r.json');
    const other = coordinator(name, fDir, otherG, ['--out', out]);
    expect(await other.exited).toBe(2);
    expect(other.stderr()).toMatch(new RegExp(`job ${name} already exists with other inputs or options \\(G was ${gDir}, this run's is ${otherG}`));
    expect(other.stderr()).toMatch(new RegExp(`neurocorr jobs --delete ${name}`));
    expect(other.stdout()).toBe('');
    expect(existsSync(out)).toBe(false);
    const again = coordinator(name, fDir, gDir, ['--out', out]);
    expect(await again.exited).toBe(0);
    expect((JSON.parse(readFileSync(out, 'utf8')) as { scores: unknown }).scores).toEqual(embedded());
    // jobs --delete frees the name.
    const del = spawnCli(['jobs', '--redis', redis.url, '--delete', name]);
    expect(await del.exited).toBe(0);
    const reuse = coordinator(name, fDir, otherG);
    expect(await reuse.exited, reuse.stderr()).toBe(0);
    expect((JSON.parse(reuse.stdout()) as { scores: unknown }).scores).toEqual(embedded(fDir, otherG));
  });

  it('a retargeted symlink in a set is another input: the same job name is refused, and the finished job stays done (issue 23)', async () => {
    await worker(nats.url, ['--data-root', tmpdir()]);
    const set = mkdtempSync(join(tmpdir(), 'nc-trust-linked-'));
    const targets = [fDir, writeNpyDir(genModel(95, { m: 16, layers: [[40], [30]], latent }))];
    for (const layer of ['layer00.npy', 'layer01.npy']) symlinkSync(join(targets[0]!, layer), join(set, layer));
    const name = job();
    const first = coordinator(name, set, gDir);
    expect(await first.exited, first.stderr()).toBe(0);
    for (const layer of ['layer00.npy', 'layer01.npy']) {
      rmSync(join(set, layer));
      symlinkSync(join(targets[1]!, layer), join(set, layer));
    }
    const again = coordinator(name, set, gDir);
    expect(await again.exited).toBe(2);
    expect(again.stderr()).toMatch(/already exists with other inputs or options \(F's files at .* changed since the job was started/);
    const jobs = spawnCli(['jobs', '--redis', redis.url, '--json']);
    expect(await jobs.exited).toBe(0);
    expect((JSON.parse(jobs.stdout()) as { job: string; status: string }[]).find((j) => j.job === name)?.status).toBe('done');
  });

  it('a cached object-store file overwritten with other bytes of the same size is noticed and fetched again (finding 2)', async () => {
    const cache = join(scratch, 'cache-d');
    await worker(nats.url, ['--cache-dir', cache]);
    const first = coordinator(job(), fDir, gDir, ['--upload']);
    expect(await first.exited, first.stderr()).toBe(0);
    const expected = (JSON.parse(first.stdout()) as { scores: unknown }).scores;
    const layer = readdirSync(cache, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.npy'))
      .map((f) => join(cache, f))[0]!;
    const bytes = readFileSync(layer);
    bytes.fill(7, bytes.length - 64);
    writeFileSync(layer, bytes);
    const second = coordinator(job(), fDir, gDir, ['--upload']);
    expect(await second.exited, second.stderr()).toBe(0);
    expect((JSON.parse(second.stdout()) as { scores: unknown }).scores).toEqual(expected);
    expect(
      readFileSync(layer)
        .subarray(-64)
        .every((b) => b === 7),
    ).toBe(false);
  });
});
