/** What the job driver (coordinator/job.ts) hands an executor: the job, and the parts of a run every executor shares. */
import type { PlannedSet } from '../shared/formats/index.js';
import type { JobPairInput, JobPlan } from '../shared/job/index.js';
import type { Planner } from './job-plan.js';
import type { JobClock } from './job-timing.js';

/** The pairs to compute, and the models they read. */
export interface Job {
  readonly paths: readonly string[];
  /** How messages name each model ('F', 'G', or a zoo's model names). */
  readonly labels: readonly string[];
  readonly planned: PlannedSet;
  readonly pairs: readonly JobPairInput[];
}

/** What the executors are handed: the one planner, the one clock, the progress events. */
export interface JobRuntime {
  readonly planner: Planner;
  readonly clock: JobClock;
  /** The plan is known; `done` tiles were done before this run. */
  readonly onStart: (plan: JobPlan, done: number) => void;
  readonly onTile: (done: number) => void;
}
