/**
 * One contract at the CLI's edge (issue 24): an invalid flag value is exit 2
 * naming the flag, never "internal error"; a job leased by another
 * coordinator and a job whose stored state is corrupt each exit with their
 * own code (shared/errors.ts), naming the job, the key and the fix.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobKeys } from '../dist/shared/cluster/index.js';
import { isOptionError, OptionRangeError, OptionTypeError } from '../dist/shared/errors.js';
import { jobNames, spawnCli, useClusterServers, waitFor } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';

const latent = latents(41, 16, 2);
const fDir = writeNpyDir(genModel(42, { m: 16, layers: [[30], [20]], latent }));
const gDir = writeNpyDir(genModel(43, { m: 16, layers: [[25]], latent }));
const cluster = useClusterServers();
const names = jobNames('edges');

const servers = () => ['--nats', cluster.nats.url, '--redis', cluster.redisServer.url];

async function refused(args: string[], flag: string): Promise<string> {
  const c = spawnCli(args);
  expect(await c.exited, c.stderr()).toBe(2);
  expect(c.stderr()).toContain(`neurocorr: error: ${flag}`);
  expect(c.stderr()).not.toMatch(/internal error|\n\s+at /);
  expect(c.stdout()).toBe('');
  return c.stderr();
}

describe('an empty flag value is exit 2 naming the flag', () => {
  const commands = (): [string, string[]][] => [
    ['score', ['score', fDir, gDir, ...servers()]],
    ['coordinator', ['coordinator', fDir, gDir, ...servers()]],
    ['zoo', ['zoo', fDir, gDir, '--out', join(mkdtempSync(join(tmpdir(), 'nc-edges-')), 'zoo'), ...servers()]],
  ];

  it.each(['--job', '--prefix'])('%s "" on score, coordinator and zoo', async (flag) => {
    for (const [, args] of commands()) {
      expect(await refused([...args, flag, ''], flag)).toContain(`${flag} must be a non-empty string, got ""`);
    }
  });

  it('jobs --prefix "", --delete "" (and a name that is not one) and --redis-user "", worker --id "" and --cache-dir ""', async () => {
    const redis = ['--redis', cluster.redisServer.url];
    expect(await refused(['jobs', ...redis, '--prefix', ''], '--prefix')).toContain('--prefix must be a non-empty string');
    expect(await refused(['jobs', ...redis, '--delete', ''], '--delete')).toContain('--delete must be a non-empty string');
    expect(await refused(['jobs', ...redis, '--delete', 'a b'], '--delete')).toContain('--delete "a b" is not a valid job name');
    expect(await refused(['jobs', ...redis, '--redis-user', ''], '--redis-user')).toContain('--redis-user must be a non-empty string');
    expect(await refused(['worker', '--nats', cluster.nats.url, '--id', ''], '--id')).toContain('--id must be a non-empty string');
    expect(await refused(['worker', '--nats', cluster.nats.url, '--cache-dir', ''], '--cache-dir')).toContain('--cache-dir must be a non-empty string');
  });

  it('a worker fault that is not one (NEUROCORR_WORKER_FAULT, the test seam) is exit 2 naming it', async () => {
    const c = spawnCli(['worker', '--nats', cluster.nats.url], { NEUROCORR_WORKER_FAULT: 'slo:5' });
    expect(await c.exited, c.stderr()).toBe(2);
    expect(c.stderr()).toContain('NEUROCORR_WORKER_FAULT=slo:5 is not duplicate, slow:MS, wedge:N or lie');
  });

  it('option errors are told apart from other TypeErrors and RangeErrors (those stay internal, exit 1)', () => {
    const typed = new OptionTypeError('cluster.job', 'must be a non-empty string, got ""');
    expect(typed).toBeInstanceOf(TypeError);
    expect(typed.message).toBe('options.cluster.job must be a non-empty string, got ""');
    expect(typed.describe((o) => `--${o.split('.').pop()!}`)).toBe('--job must be a non-empty string, got ""');
    expect(new OptionRangeError('threads', 'must be from 1 to 1024, got 0')).toBeInstanceOf(RangeError);
    expect(isOptionError(typed)).toBe(true);
    expect(isOptionError(new TypeError('options.x must be a string'))).toBe(false);
    expect(isOptionError(new RangeError('Invalid array length'))).toBe(false);
  });
});

describe('a leased job and corrupt stored state have their own exit codes', () => {
  it('a second coordinator on a job another one is running: exit 6 naming the job, its lease and the fix', async () => {
    const { job, prefix } = names();
    const args = ['coordinator', fDir, gDir, ...servers(), '--job', job, '--prefix', prefix, '--lease', '1', '--no-progress', '--null', '0'];
    // No worker: the first coordinator keeps the job (and renews its lease) until it is killed.
    const first = spawnCli(args);
    await waitFor('the first coordinator to publish', () => first.stderr().includes('tiles published'), 30_000);
    const second = spawnCli(args);
    expect(await second.exited, second.stderr()).toBe(6);
    expect(second.stderr()).toContain(`job ${job} is being run by another coordinator`);
    expect(second.stderr()).toContain(jobKeys(job, prefix).lease);
    expect(second.stderr()).toMatch(/Fix: wait for that run to end .* or pick another --job/);
    expect(second.stdout()).toBe('');
    first.kill('SIGKILL');
  });

  it('a job whose stored spec is not JSON: exit 7 naming the job, the key and the command that clears it', async () => {
    const { job, prefix } = names();
    const key = jobKeys(job, prefix).spec;
    await cluster.redis.set(key, '{not json');
    const c = spawnCli(['coordinator', fDir, gDir, ...servers(), '--job', job, '--prefix', prefix, '--no-progress', '--null', '0']);
    expect(await c.exited, c.stderr()).toBe(7);
    expect(c.stderr()).toContain(`job ${job}: Redis key ${key} is not JSON`);
    expect(c.stderr()).toContain(`neurocorr jobs --delete ${job}`);
    expect(c.stderr()).toContain('--prefix');
    expect(await cluster.redis.get(key)).toBe('{not json');
  });
});
