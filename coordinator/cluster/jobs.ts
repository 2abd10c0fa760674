/** `neurocorr jobs`: the cluster jobs in Redis, with their state and progress. */
import { Redis } from 'ioredis';
import { ServiceError } from '../../shared/errors.js';
import { redactUrl } from '../../shared/cluster/index.js';
import { listJobs } from './job-store.js';

export async function jobsTable(url: string, prefix: string, json: boolean): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined); // reported through connect() and the commands
  try {
    try {
      await redis.connect();
    } catch (err) {
      throw new ServiceError('Redis', (o) => `cannot reach Redis at ${redactUrl(url)}: ${(err as Error).message}; start redis-server, or fix ${o('redis')}`, {
        cause: err,
      });
    }
    const jobs = await listJobs(redis, prefix);
    if (json) return `${JSON.stringify(jobs, null, 2)}\n`;
    if (jobs.length === 0) return `no jobs under ${prefix}:\n`;
    const rows = jobs.map((j) => [
      j.job,
      j.status,
      `${j.done}/${j.tiles}`,
      j.tiles > 0 ? `${((100 * j.done) / j.tiles).toFixed(1)}%` : '-',
      String(j.redelivered),
      String(j.duplicates),
      new Date(j.updated).toISOString(),
      j.error ?? '',
    ]);
    const header = ['JOB', 'STATE', 'TILES', 'DONE', 'REDELIVERED', 'DUPLICATES', 'UPDATED', 'ERROR'];
    const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
    return (
      [header, ...rows]
        .map((r) =>
          r
            .map((cell, k) => cell.padEnd(widths[k]!))
            .join('  ')
            .trimEnd(),
        )
        .join('\n') + '\n'
    );
  } finally {
    redis.disconnect();
  }
}
