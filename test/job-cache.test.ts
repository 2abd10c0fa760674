/**
 * The worker's cache of open jobs (worker/cluster/job-cache.ts), with the
 * planning and loading replaced by records of what was asked: jobs share
 * --cache, idle jobs are closed least recently used first, a job waits for
 * busy ones to fall idle, one too large is refused naming the flag, and
 * shard sets share what is left evenly up to their whole size.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../dist/shared/errors.js';
import { JobCache, type CacheDeps } from '../dist/worker/cluster/job-cache.js';
import type { PlannedJob, ShardNeed, WorkerJob } from '../dist/worker/cluster/job.js';
import { createLogger } from '../dist/shared/observe.js';

interface Fake {
  readonly fixedBytes: number;
  readonly shards?: readonly (ShardNeed | null)[];
}

/** A cache over fake jobs: `loads` lists the jobs loaded, `budgets` each loaded shard set's budget now. */
function cache(budget: number, jobs: Record<string, Fake>) {
  const loads: string[] = [];
  const budgets = new Map<string, number>();
  const deps: CacheDeps = {
    plan: async (job) => {
      const fake = jobs[job];
      if (fake === undefined) return null;
      return { spec: { job }, paths: [], plans: [], fixedBytes: fake.fixedBytes, shards: fake.shards ?? [] } as unknown as PlannedJob;
    },
    load: async (planned, given) => {
      const job = planned.spec.job;
      loads.push(job);
      const sources = given.map((b, k) => ({ stream: b === null ? null : { setBudget: (bytes: number) => budgets.set(`${job}#${k}`, bytes) } }));
      given.forEach((b, k) => b !== null && budgets.set(`${job}#${k}`, b));
      return { spec: planned.spec, sources } as unknown as WorkerJob;
    },
    log: createLogger('test', 'silent'),
  };
  return { cache: new JobCache(budget, deps), loads, budgets };
}

const shard = (least: number, full: number): ShardNeed => ({ least, full, shardBytes: least, path: '/sets/s' });
const beat = (): void => undefined;

describe("a worker's cache of open jobs", () => {
  it('holds jobs that fit together, and opens each once', async () => {
    const { cache: c, loads } = cache(100, { a: { fixedBytes: 40 }, b: { fixedBytes: 50 } });
    const held = await Promise.all([c.acquire('a', 's', beat), c.acquire('a', 's', beat), c.acquire('b', 's', beat)]);
    expect(loads).toEqual(['a', 'b']);
    expect(c.bytes).toBe(90);
    held.forEach((h) => h!.release());
  });

  it('closes idle jobs, least recently used first, to make room', async () => {
    const { cache: c, loads } = cache(100, { a: { fixedBytes: 40 }, b: { fixedBytes: 40 }, c: { fixedBytes: 40 } });
    (await c.acquire('a', 's', beat))!.release();
    (await c.acquire('b', 's', beat))!.release();
    (await c.acquire('a', 's', beat))!.release();
    (await c.acquire('c', 's', beat))!.release();
    // b was used least recently: it was closed, a was kept.
    expect(
      c
        .opened()
        .map((j) => j.spec.job)
        .sort(),
    ).toEqual(['a', 'c']);
    (await c.acquire('a', 's', beat))!.release();
    expect(loads).toEqual(['a', 'b', 'c']);
  });

  it('a job waits while the jobs holding the room have tiles in flight, and opens once one falls idle', async () => {
    const { cache: c, loads } = cache(100, { a: { fixedBytes: 60 }, b: { fixedBytes: 60 } });
    const a = (await c.acquire('a', 's', beat))!;
    let opened = false;
    const b = c.acquire('b', 's', beat).then((held) => {
      opened = true;
      return held;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(opened).toBe(false);
    a.release();
    (await b)!.release();
    expect(loads).toEqual(['a', 'b']);
    expect(c.opened().map((j) => j.spec.job)).toEqual(['b']);
  });

  it('refuses a job that alone needs more than the cache, naming the option and the size that fits', async () => {
    const { cache: c } = cache(1000, { big: { fixedBytes: 3 * 2 ** 20 } });
    const err = await c.acquire('big', 's', beat).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).describe((o) => `--${o}`)).toContain('but its --cache is 1000 bytes:');
    expect((err as UsageError).describe((o) => `--${o}`)).toContain('start the worker with --cache 3MiB or more');
    // Refused, not kept: the next tile asks again.
    expect(c.size).toBe(0);
  });

  it('a job that is gone (no spec) is null, and nothing is kept', async () => {
    const { cache: c } = cache(100, {});
    expect(await c.acquire('gone', 's', beat)).toBeNull();
    expect(c.size).toBe(0);
  });

  it("shard sets share what the cache has left, evenly, each up to its whole set; a job's models held whole come first", async () => {
    const { cache: c, budgets } = cache(1000, {
      a: { fixedBytes: 0, shards: [shard(100, 5000)] },
      b: { fixedBytes: 200, shards: [null, shard(100, 300)] },
      d: { fixedBytes: 0, shards: [shard(50, 5000)] },
    });
    (await c.acquire('a', 's', beat))!.release();
    expect(budgets.get('a#0')).toBe(1000);
    (await c.acquire('b', 's', beat))!.release();
    // b's set takes its whole 300; a gets the rest after b's 200 held whole.
    expect([budgets.get('a#0'), budgets.get('b#1')]).toEqual([500, 300]);
    (await c.acquire('d', 's', beat))!.release();
    expect(budgets.get('b#1')! + budgets.get('a#0')! + budgets.get('d#0')! + 200).toBeLessThanOrEqual(1000);
    // What is left beyond each set's least is shared evenly.
    expect(Math.abs(budgets.get('a#0')! - 100 - (budgets.get('d#0')! - 50))).toBeLessThanOrEqual(1);
    expect(c.bytes).toBeLessThanOrEqual(1000);
  });

  it('closes the idle jobs whose queues are gone', async () => {
    const { cache: c } = cache(100, { a: { fixedBytes: 10 }, b: { fixedBytes: 10 } });
    (await c.acquire('a', 's', beat))!.release();
    const b = (await c.acquire('b', 's', beat))!;
    c.retain(new Set());
    expect(c.opened().map((j) => j.spec.job)).toEqual(['b']);
    b.release();
  });
});
