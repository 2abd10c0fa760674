/** The Prometheus metrics of a cluster job's execution (served by the coordinator's --metrics-port). */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface Metrics {
  readonly done: Gauge;
  readonly total: Gauge;
  readonly inFlight: Gauge;
  readonly duplicates: Counter;
  readonly redelivered: Counter;
  readonly republished: Counter;
  /** Counts a refused result by its sender (a bounded number of names; the rest as `other`). */
  refusedFrom(sender: string): void;
  readonly quarantined: Counter;
  readonly pairs: Counter;
  readonly pairsPerSecond: Gauge;
}

export function jobMetrics(registry: Registry): Metrics {
  const registers = [registry];
  const refused = new Counter({
    name: 'neurocorr_results_refused_total',
    help: 'results refused for not fitting their tile (values, partners, shape, a claim the models do not bear out, or a sender that is not who it claims), by sender',
    labelNames: ['sender'],
    registers,
  });
  // Sender names are bounded tokens, but a flood of made-up ones must not grow the metrics without bound.
  const senders = new Set<string>();
  return {
    refusedFrom: (sender) => {
      if (senders.size < 64) senders.add(sender);
      refused.inc({ sender: senders.has(sender) ? sender : 'other' });
    },
    done: new Gauge({ name: 'neurocorr_tiles_done', help: 'tiles of the job folded into the reduction', registers }),
    total: new Gauge({ name: 'neurocorr_tiles_total', help: 'tiles in the job plan', registers }),
    inFlight: new Gauge({ name: 'neurocorr_tiles_in_flight', help: 'tiles published and not yet done', registers }),
    duplicates: new Counter({ name: 'neurocorr_tiles_duplicate_total', help: 'results for tiles already done (harmless)', registers }),
    redelivered: new Counter({ name: 'neurocorr_tiles_redelivered_total', help: 'tiles whose result came from a second or later delivery', registers }),
    republished: new Counter({ name: 'neurocorr_tiles_republished_total', help: 'tiles published again after their message went missing', registers }),
    quarantined: new Counter({
      name: 'neurocorr_workers_quarantined_total',
      help: 'workers an audit found false (their results refused, their tiles computed again)',
      registers,
    }),
    pairs: new Counter({ name: 'neurocorr_pairs_total', help: 'neuron pairs correlated (rate() gives pairs/s)', registers }),
    pairsPerSecond: new Gauge({ name: 'neurocorr_pairs_per_second', help: 'neuron pairs per second since this coordinator started', registers }),
  };
}
