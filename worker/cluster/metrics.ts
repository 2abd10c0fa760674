/** The worker's Prometheus metrics. */
import { Counter, Gauge } from 'prom-client';
import type { MetricsEndpoint } from '../../shared/observe.js';
import type { WorkerJob } from './job.js';

export interface WorkerMetrics {
  readonly done: Counter;
  readonly failed: Counter;
  readonly redelivered: Counter;
  readonly inFlight: Gauge;
  readonly pairs: Counter;
  readonly pairsPerSecond: Gauge;
  readonly cacheHits: Gauge;
  readonly cacheLoads: Gauge;
}

export function workerMetrics(endpoint: MetricsEndpoint, settled: Map<string, WorkerJob>): WorkerMetrics {
  const registers = [endpoint.registry];
  const total = (key: 'hits' | 'loads') =>
    [...settled.values()].reduce((sum, j) => sum + j.sources.reduce((n, source) => n + (source.stats?.[key] ?? 0), 0), 0);
  return {
    done: new Counter({ name: 'neurocorr_worker_tiles_done_total', help: 'tiles computed and published', registers }),
    failed: new Counter({ name: 'neurocorr_worker_tiles_failed_total', help: 'tiles that failed here', registers }),
    redelivered: new Counter({ name: 'neurocorr_worker_tiles_redelivered_total', help: 'tiles received on a second or later delivery', registers }),
    inFlight: new Gauge({ name: 'neurocorr_worker_tiles_in_flight', help: 'tiles held by this worker', registers }),
    pairs: new Counter({ name: 'neurocorr_worker_pairs_total', help: 'neuron pairs correlated (rate() gives pairs/s)', registers }),
    pairsPerSecond: new Gauge({ name: 'neurocorr_worker_pairs_per_second', help: 'neuron pairs per second over the last 10 s', registers }),
    cacheHits: new Gauge({
      name: 'neurocorr_worker_cache_hits',
      help: 'shard cache hits',
      registers,
      collect() {
        this.set(total('hits'));
      },
    }),
    cacheLoads: new Gauge({
      name: 'neurocorr_worker_cache_loads',
      help: 'shard loads (cache misses)',
      registers,
      collect() {
        this.set(total('loads'));
      },
    }),
  };
}
