/** A result message from a worker, checked against its tile: results arrive over the network, so nothing about their shape is trusted. */
import type { PartMessage, ResultMessage } from '../../shared/cluster/index.js';
import { operands, superEntries, type JobPlan, type JobTile, type TileOutcome } from '../../shared/job/index.js';

/**
 * A result message as its tile's outcome, or null when its shape is not the
 * tile's: a kernel tile's result sized as the tile, with a main tile's
 * constant flags; a part of a super-tile starting at a multiple of the
 * spec's `partEntries` and as long as the spec cuts it.
 */
export function resultOutcome(plan: JobPlan, partEntries: number, tile: JobTile, decoded: ResultMessage | PartMessage): TileOutcome | null {
  const seconds = decoded.milliseconds / 1000;
  if (decoded.kind === 'part') {
    const { offset, best } = decoded.part;
    const cut = tile.kind === 'super' && offset % partEntries === 0 && best.length === Math.min(partEntries, superEntries(tile) - offset);
    return cut ? { kind: 'part', part: decoded.part, constant: decoded.constant, seconds } : null;
  }
  if (tile.kind === 'super') return null;
  const { rows, cols } = operands(plan, tile);
  const flags = tile.kind === 'main' ? rows.block.count + cols.block.count : 0;
  const { result, constant } = decoded;
  if (result.rowBest.length !== rows.block.count || result.colBest.length !== cols.block.count || constant.length !== flags) return null;
  return { kind: 'tile', result, constant: tile.kind === 'main' ? constant : null, seconds };
}
