/**
 * A zoo's pairs as one job: every pair still to compute, over the models they
 * need (each opened and standardized once), run by the job driver
 * (coordinator/job.ts) on one pool or in one JetStream job. Each pair's report
 * is what `score F G` reports; embedded runs hand each over as soon as its
 * last tile is in.
 */
import type { Report } from '../../shared/core/index.js';
import { runJob, type Job } from '../job.js';
import type { ZooSettings } from './options.js';

export type ZooJob = Job;

/** Called once per pair, as soon as its report is known. */
export type OnPair = (index: number, report: Report) => void;

export async function runZooJob(s: ZooSettings, job: ZooJob, onPair: OnPair): Promise<readonly Report[]> {
  return runJob(s, job, {
    onPair: (index, scored) => onPair(index, scored.report),
    restored: (reports, name) => {
      s.log(`job ${name} is already done; its stored results are used`);
      reports.forEach((report, index) => onPair(index, report));
    },
  });
}
