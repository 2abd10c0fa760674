/** `neurocorr jobs`: the cluster jobs in Redis, with their state and progress; `--delete NAME` removes one. */
import { checkJobName } from '../../shared/cluster/index.js';
import { UsageError } from '../../shared/errors.js';
import { createLogger } from '../../shared/observe.js';
import { deleteJob, listJobs } from './job-store.js';
import { connectRedis, type RedisService } from './redis.js';

export interface JobsOptions {
  readonly redis: RedisService;
  readonly prefix: string;
  readonly json: boolean;
  /** Remove this job's keys instead of listing. */
  readonly delete?: string;
}

export async function jobsTable(options: JobsOptions): Promise<string> {
  const { prefix, json } = options;
  if (prefix === '') throw new UsageError((o) => `${o('cluster.prefix')} must be a non-empty string, got ""`);
  const job = options.delete === undefined ? undefined : checkJobName(options.delete, 'delete');
  const connection = await connectRedis(options.redis, createLogger('neurocorr-jobs', 'warn'));
  const { redis } = connection;
  try {
    if (job !== undefined) {
      if (!(await deleteJob(redis, prefix, job)))
        throw new UsageError((o) => `no job ${job} under the prefix ${prefix}; list them with \`neurocorr jobs\` (and the same ${o('cluster.prefix')})`);
      return `deleted job ${job}\n`;
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
      j.updated > 0 ? new Date(j.updated).toISOString() : '-',
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
    connection.close();
  }
}
