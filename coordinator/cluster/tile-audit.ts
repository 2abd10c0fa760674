/**
 * Second opinions on whole tiles. A sampled check proves a result's values
 * are real correlations of the pairs it names; it cannot prove those pairs
 * are the best ones. So a fraction of the tiles (`--audit`) is published
 * again, once done, for another worker to compute; the two results must
 * agree. Where an entry differs, the coordinator settles it from the models:
 * the higher claim, if it is a real correlation, shows the other worker hid
 * a better partner; if it is not, the higher claim is the lie. The worker
 * found false is quarantined: its results are refused from then on, and the
 * tiles it computed are reopened and published again, so honest results
 * take their place (a merge keeps the larger |rho|, so they win).
 */
import { randomInt } from 'node:crypto';
import type { JobTile, TileOutcome } from '../../shared/job/index.js';
import type { ResultSampler } from './result-sampler.js';

interface Opinion {
  readonly sender: string;
  /** A kernel tile's result, or a super-tile's parts by offset. */
  readonly outcomes: Map<number, TileOutcome>;
}

export type Verdict = { readonly kind: 'agree' } | { readonly kind: 'false'; readonly sender: string; readonly why: string };

/** Fresh rounds of deliveries a tile that avoids a worker gets (about 5 s each: the avoided worker's hand-backs wait 1 s). */
const MAX_BOUNCES = 50;

const offsetOf = (outcome: TileOutcome): number => (outcome.kind === 'part' ? outcome.part.offset : 0);

export class TileAudit {
  /** Tiles chosen for an audit, with the first worker's result. */
  private readonly first = new Map<number, Opinion>();
  private readonly decided = new Set<number>();
  /** The tiles each worker's results completed, to reopen if it is found false. */
  private readonly computed = new Map<string, Set<number>>();
  readonly quarantined = new Set<string>();
  /** Tiles published for any worker but one, and how often they came back undelivered. */
  private readonly avoided = new Map<number, { readonly sender: string; bounces: number }>();

  constructor(
    /** Share of tiles audited, 0 to 1. */
    private readonly fraction: number,
    private readonly sampler: ResultSampler,
  ) {}

  /** A result (or part) of `sender` was merged into `tile`: kept when the tile is under audit. */
  merged(tile: JobTile, sender: string, outcome: TileOutcome): void {
    let done = this.computed.get(sender);
    if (done === undefined) this.computed.set(sender, (done = new Set()));
    done.add(tile.id);
    // A second opinion needs another worker: tiles are chosen once two have computed some.
    if (!this.decided.has(tile.id) && this.computed.size >= 2) {
      this.decided.add(tile.id);
      if (randomInt(1_000_000) < this.fraction * 1_000_000) this.first.set(tile.id, { sender, outcomes: new Map() });
    }
    const opinion = this.first.get(tile.id);
    if (opinion?.sender === sender) opinion.outcomes.set(offsetOf(outcome), outcome);
  }

  /** The worker whose result a done tile's audit must not come from; null when the tile is not audited. */
  auditOf(id: number): string | null {
    return this.first.get(id)?.sender ?? null;
  }

  /** A result for an audited tile from another worker: compared with the first, entry by entry; null when there is nothing to compare. */
  secondOpinion(tile: JobTile, sender: string, outcome: TileOutcome): Verdict | null {
    const opinion = this.first.get(tile.id);
    if (opinion === undefined || opinion.sender === sender) return null;
    const first = opinion.outcomes.get(offsetOf(outcome));
    if (first === undefined) return null;
    const a = values(first);
    const b = values(outcome);
    if (a.length !== b.length) return null;
    for (let k = 0; k < a.length; k++) {
      if (Math.abs(a[k]! - b[k]!) <= this.sampler.tolerance) continue;
      const [high, low] = a[k]! > b[k]! ? [{ outcome: first, sender: opinion.sender }, { sender }] : [{ outcome, sender }, { sender: opinion.sender }];
      const entry = k % (a.length / (first.kind === 'part' ? 2 : 1));
      const real = this.sampler.holds(tile, high.outcome, entry);
      const why = real
        ? `tile ${tile.id}, entry ${entry}: it claimed a best of ${Math.min(a[k]!, b[k]!)} where worker ${high.sender} found a real ${Math.max(a[k]!, b[k]!)}`
        : `tile ${tile.id}, entry ${entry}: it claimed ${Math.max(a[k]!, b[k]!)}, which is not its pair's |rho|`;
      this.first.delete(tile.id);
      return { kind: 'false', sender: real ? low.sender : high.sender, why };
    }
    opinion.outcomes.delete(offsetOf(outcome));
    if (opinion.outcomes.size === 0) this.first.delete(tile.id);
    return { kind: 'agree' };
  }

  /** A tile is published again for any worker but `sender`. */
  avoiding(id: number, sender: string): void {
    this.avoided.set(id, { sender, bounces: this.avoided.get(id)?.bounces ?? 0 });
  }

  /**
   * JetStream stopped delivering a tile that was published to avoid a worker
   * (that worker hands it back each time it pulls it, and each counts as a
   * delivery; a quarantined one may pull as fast as it likes): the worker to
   * avoid on one more try, or null when the tile has had its tries (then it
   * fails as any tile would).
   */
  bounce(id: number): string | null {
    const avoided = this.avoided.get(id);
    if (avoided === undefined || avoided.bounces >= MAX_BOUNCES) return null;
    avoided.bounces++;
    return avoided.sender;
  }

  /** Audits under way. */
  get pending(): number {
    return this.first.size;
  }

  /** Quarantines a worker found false: the tiles it completed, to reopen (its audits under way end). */
  quarantine(sender: string): number[] {
    this.quarantined.add(sender);
    const reopen = [...(this.computed.get(sender) ?? [])];
    this.computed.delete(sender);
    for (const [id, opinion] of this.first) if (opinion.sender === sender) this.first.delete(id);
    return reopen;
  }
}

/** The |rho| values a result claims, entry by entry (a part's best matches, then its penalized ones). */
function values(outcome: TileOutcome): Float64Array {
  if (outcome.kind === 'part') {
    const { best, penRho } = outcome.part;
    const all = new Float64Array(best.length * 2);
    all.set(best);
    all.set(penRho, best.length);
    return all;
  }
  const { rowBest, colBest } = outcome.result;
  const all = new Float64Array(rowBest.length + colBest.length);
  all.set(rowBest);
  all.set(colBest, rowBest.length);
  return all;
}
