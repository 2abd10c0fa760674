/**
 * Fault injection, for tests and chaos runs: not an option of the library's
 * workers, only of the CLI's (NEUROCORR_WORKER_FAULT, passed to runWorker): `duplicate` publishes every result
 * twice; `slow:MS` holds each tile MS ms; `wedge:N` hangs the first N tiles
 * for ever; `lie` reports for each main tile's neuron a real but worse match,
 * the first neuron of the tile's other side (what only an audit catches).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { UsageError } from '../../shared/errors.js';
import type { MainTile, TileOutcome } from '../../shared/job/index.js';
import type { WorkerJob } from './job.js';

let wedged = 0;

const FAULT = /^(duplicate|lie|slow:\d+|wedge:\d+)$/;

/** A fault as the host gives it, checked (a misspelt one would silently inject nothing). */
export function checkFault(fault: string | undefined): string | null {
  if (fault === undefined) return null;
  if (!FAULT.test(fault)) throw new UsageError(`worker fault ${JSON.stringify(fault)} (NEUROCORR_WORKER_FAULT): use duplicate, slow:MS, wedge:N or lie`);
  return fault;
}

/** What the fault holds a tile for before it is computed (null: nothing). */
export function hold(fault: string | null): Promise<void> | null {
  const slow = /^slow:(\d+)$/.exec(fault ?? '');
  if (slow) return delay(Number(slow[1])).then(() => undefined);
  const wedge = /^wedge:(\d+)$/.exec(fault ?? '');
  if (wedge && wedged++ < Number(wedge[1])) return new Promise<void>(() => undefined);
  return null;
}

/** The outcome as a `lie` fault reports it. */
export function lie(fault: string | null, job: WorkerJob, tile: MainTile, outcome: TileOutcome): TileOutcome {
  if (fault !== 'lie' || outcome.kind !== 'tile') return outcome;
  const [f, g] = [job.plan.pairs[tile.pair]!.f, job.plan.pairs[tile.pair]!.g];
  const row = (model: number, i: number) => job.sources[model]!.acquire(i, 1).slice();
  const rho = (a: Float32Array, b: Float32Array) => Math.abs(a.reduce((sum, x, t) => sum + x * b[t]!, 0));
  const { rowBest, rowArg, colBest, colArg } = outcome.result;
  const [g0, f0] = [row(g, tile.g.start), row(f, tile.f.start)];
  for (let i = 0; i < rowBest.length; i++) [rowBest[i], rowArg[i]] = [rho(row(f, tile.f.start + i), g0), tile.g.start];
  for (let j = 0; j < colBest.length; j++) [colBest[j], colArg[j]] = [rho(f0, row(g, tile.g.start + j)), tile.f.start];
  return outcome;
}
