/**
 * Tiles a job publishes again beyond its first round: after a result that
 * was refused, for an audit's second opinion, and after an audit found a
 * worker false (its tiles reopened). A tile may name a worker it avoids.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { JobPlan, JobTile } from '../../shared/job/index.js';
import type { Metrics } from './executor-metrics.js';
import { republishTile, type TilePublisher } from './job-transport.js';
import type { TileAudit } from './tile-audit.js';

export interface RequeueContext extends TilePublisher {
  readonly plan: JobPlan;
  readonly queue: { readonly ackWaitMs: number };
  readonly audit: { readonly tiles: TileAudit; readonly undo: (ids: readonly number[]) => number[] } | null;
}

export class TileRequeue {
  /** When each tile was last published again after a refused result. */
  private readonly republishedAt = new Map<number, number>();
  private readonly publishing = new Set<Promise<void>>();

  constructor(
    private readonly o: RequeueContext,
    private readonly metrics: Metrics,
    /** The executor's tiles not yet accepted, by id. */
    private readonly remaining: Map<number, JobTile>,
  ) {}

  /** Publishes a tile again, for any worker but `avoid` when one is named. */
  again(tile: JobTile, avoid = ''): void {
    if (avoid !== '') this.o.audit?.tiles.avoiding(tile.id, avoid);
    const done = republishTile(this.o, tile, avoid).finally(() => this.publishing.delete(done));
    this.publishing.add(done);
  }

  /** Resolves once every tile published again is in the stream (or its publish gave up). */
  async published(): Promise<void> {
    while (this.publishing.size > 0) await Promise.all(this.publishing);
  }

  /**
   * A result that does not fit its tile (it came over the network: a broken
   * or a hostile sender) changes nothing: it is dropped, its sender named in
   * the log and the metrics, and the tile published again (once per ack wait
   * at most), so an honest worker computes it.
   */
  refuse(msg: JsMsg, tile: JobTile, sender: string, problem: string): void {
    const { o } = this;
    o.log.error({ tile: tile.id, sender, problem }, 'refusing a result that does not fit its tile');
    this.metrics.refusedFrom(sender);
    msg.term();
    const last = this.republishedAt.get(tile.id) ?? -Infinity;
    if (!this.remaining.has(tile.id) || performance.now() - last < o.queue.ackWaitMs) return;
    this.republishedAt.set(tile.id, performance.now());
    this.again(tile, o.audit?.tiles.quarantined.has(sender) ? sender : '');
  }

  /** A worker found false by an audit: its results are refused from now on, and what it merged is undone and computed again. */
  quarantine(sender: string, why: string): void {
    const { o } = this;
    const reopen = o.audit!.tiles.quarantine(sender);
    // Undone, not merged over: a false |rho| within the checks' tolerance of a true one would otherwise stay.
    const tiles = o.audit!.undo(reopen);
    o.log.error(
      { sender, why, undone: reopen.length, again: tiles.length },
      'a worker disagreed with an audit and was found false: quarantined, what it merged undone and computed again',
    );
    this.metrics.quarantined.inc();
    for (const id of tiles) {
      const tile = o.plan.tiles[id]!;
      if (!this.remaining.has(id)) this.metrics.inFlight.inc();
      this.remaining.set(id, tile);
      this.again(tile, sender);
    }
  }
}
