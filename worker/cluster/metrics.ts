/** The worker's Prometheus metrics. */
import { Counter, Gauge } from 'prom-client';
import type { MetricsEndpoint } from '../../shared/observe.js';
import type { JobCache } from './job-cache.js';

export interface WorkerMetrics {
  readonly done: Counter;
  readonly failed: Counter;
  readonly redelivered: Counter;
  readonly wedged: Counter;
  readonly inFlight: Gauge;
  readonly pairs: Counter;
  readonly pairsPerSecond: Gauge;
}

export function workerMetrics(endpoint: MetricsEndpoint, cache: JobCache, wedgedLanes: () => number): WorkerMetrics {
  const registers = [endpoint.registry];
  const total = (key: 'hits' | 'loads') => cache.opened().reduce((sum, j) => sum + j.sources.reduce((n, source) => n + (source.stats?.[key] ?? 0), 0), 0);
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value());
      },
    });
  gauge('neurocorr_worker_cache_hits', 'shard cache hits', () => total('hits'));
  gauge('neurocorr_worker_cache_loads', 'shard loads (cache misses)', () => total('loads'));
  gauge('neurocorr_worker_cache_bytes', 'bytes the open jobs may hold (models held whole, shard-set budgets), within --cache', () => cache.bytes);
  gauge('neurocorr_worker_jobs_open', 'jobs whose models this worker holds', () => cache.size);
  gauge('neurocorr_worker_lanes_wedged', 'lanes that gave their tile up and have not returned', wedgedLanes);
  return {
    done: new Counter({ name: 'neurocorr_worker_tiles_done_total', help: 'tiles computed and published', registers }),
    failed: new Counter({ name: 'neurocorr_worker_tiles_failed_total', help: 'tiles that failed here', registers }),
    redelivered: new Counter({ name: 'neurocorr_worker_tiles_redelivered_total', help: 'tiles received on a second or later delivery', registers }),
    wedged: new Counter({
      name: 'neurocorr_worker_lanes_gave_up_total',
      help: 'tiles a lane gave up for lack of progress (JetStream redelivers them)',
      registers,
    }),
    inFlight: new Gauge({ name: 'neurocorr_worker_tiles_in_flight', help: 'tiles held by this worker', registers }),
    pairs: new Counter({ name: 'neurocorr_worker_pairs_total', help: 'neuron pairs correlated (rate() gives pairs/s)', registers }),
    pairsPerSecond: new Gauge({ name: 'neurocorr_worker_pairs_per_second', help: 'neuron pairs per second over the last 10 s', registers }),
  };
}
