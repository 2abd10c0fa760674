/**
 * A result message from a worker, checked against its tile before anything
 * of it is merged: results arrive over the network, so neither their shape
 * nor their values are trusted. Every |rho| must be a number in [0, 1] and
 * every partner a neuron of the tile's other side; a part of a super-tile
 * must be cut as the spec cuts it, and its penalized match can be no better
 * a correlation than its best.
 */
import { decodeResult, senderOf, type PartMessage, type ResultMessage } from '../../shared/cluster/index.js';
import { operands, superEntries, type JobPlan, type JobTile, type SuperTile, type TileOutcome } from '../../shared/job/index.js';
import type { Range, SuperPart, TileResult } from '../../shared/tiles/index.js';
import { untrusted } from '../../shared/untrusted.js';

/**
 * A message from the job's results stream, as the coordinator takes it. Its
 * sender is the worker its subject names (NATS permissions can bind a
 * worker's credential to it); the message's own claims are checked against it.
 */
export type Incoming =
  /** Not a result of this job's plan at all: dropped. */
  | { readonly kind: 'drop'; readonly why: string; readonly sender: string }
  /** A result of one of its tiles that does not fit it: refused, and the tile published again. */
  | { readonly kind: 'refuse'; readonly tile: JobTile; readonly sender: string; readonly problem: string }
  /** A worker's report that the tile failed there, in its words (made safe to print). */
  | { readonly kind: 'failure'; readonly tile: JobTile; readonly sender: string; readonly error: string }
  | {
      readonly kind: 'result';
      readonly tile: JobTile;
      readonly sender: string;
      readonly kernel: string;
      readonly deliveries: number;
      readonly outcome: TileOutcome;
    };

export function admit(subject: string, data: Uint8Array, job: string, plan: JobPlan, partEntries: number): Incoming {
  const sender = senderOf(subject, job);
  if (sender === null) return { kind: 'drop', why: `a message on ${untrusted(subject, 200)}, not a worker's result subject of this job`, sender: 'unknown' };
  let decoded;
  try {
    decoded = decodeResult(data);
  } catch (err) {
    return { kind: 'drop', why: `undecodable: ${(err as Error).message}`, sender };
  }
  const tile = plan.tiles[decoded.tile];
  if (decoded.job !== job || tile === undefined)
    return { kind: 'drop', why: `it names job ${untrusted(decoded.job, 80)} tile ${decoded.tile}, not one of this plan`, sender };
  if (decoded.worker !== sender) return { kind: 'refuse', tile, sender, problem: `it claims to come from worker ${untrusted(decoded.worker, 130)}` };
  if (decoded.kind === 'failure') return { kind: 'failure', tile, sender, error: untrusted(decoded.error) };
  const checked = resultOutcome(plan, partEntries, tile, decoded);
  if ('problem' in checked) return { kind: 'refuse', tile, sender, problem: checked.problem };
  return { kind: 'result', tile, sender, kernel: untrusted(decoded.kernel, 64), deliveries: decoded.deliveries, outcome: checked.outcome };
}

/** |rho| of two standardized rows is at most 1; a float32 dot product may pass it by a rounding or two. */
const RHO_LIMIT = 1 + 1e-5;

export type Checked = { readonly outcome: TileOutcome } | { readonly problem: string };

/** A result message as its tile's outcome, or the problem that refuses it. */
export function resultOutcome(plan: JobPlan, partEntries: number, tile: JobTile, decoded: ResultMessage | PartMessage): Checked {
  const seconds = decoded.milliseconds / 1000;
  if (decoded.kind === 'part') {
    if (tile.kind !== 'super') return { problem: 'a part of a super-tile for a kernel tile' };
    const { offset, best } = decoded.part;
    if (offset % partEntries !== 0 || best.length !== Math.min(partEntries, superEntries(tile) - offset))
      return { problem: `a part of entries ${offset}..${offset + best.length - 1}, not as the spec cuts parts of ${partEntries}` };
    const problem = partProblem(decoded.part, tile);
    return problem !== null ? { problem } : { outcome: { kind: 'part', part: decoded.part, constant: decoded.constant, seconds } };
  }
  if (tile.kind === 'super') return { problem: 'a kernel tile result for a super-tile' };
  const { rows, cols } = operands(plan, tile);
  const flags = tile.kind === 'main' ? rows.block.count + cols.block.count : 0;
  const { result, constant } = decoded;
  if (result.rowBest.length !== rows.block.count || result.colBest.length !== cols.block.count || constant.length !== flags)
    return { problem: `sizes ${result.rowBest.length} x ${result.colBest.length}, not the tile's ${rows.block.count} x ${cols.block.count}` };
  const problem = kernelProblem(result, rows.block, cols.block);
  return problem !== null ? { problem } : { outcome: { kind: 'tile', result, constant: tile.kind === 'main' ? constant : null, seconds } };
}

/** The first entry whose |rho| is not in [0, 1] or whose partner is not in `partners`. */
function entriesProblem(best: Float64Array, arg: Uint32Array, partners: Range, what: (k: number) => string): string | null {
  for (let k = 0; k < best.length; k++) {
    const rho = best[k]!;
    if (!(rho >= 0 && rho <= RHO_LIMIT)) return `${what(k)} has |rho| ${rho}, not a number from 0 to 1`;
    const partner = arg[k]!;
    if (partner < partners.start || partner >= partners.start + partners.count)
      return `${what(k)} names partner ${partner}, not one of the tile's ${partners.start}..${partners.start + partners.count - 1}`;
  }
  return null;
}

function kernelProblem(result: TileResult, rows: Range, cols: Range): string | null {
  return (
    entriesProblem(result.rowBest, result.rowArg, cols, (k) => `row ${rows.start + k}`) ??
    entriesProblem(result.colBest, result.colArg, rows, (k) => `column ${cols.start + k}`)
  );
}

function partProblem(part: SuperPart, tile: SuperTile): string | null {
  const count = part.best.length;
  if ([part.arg, part.penRho, part.penArg].some((a) => a.length !== count)) return 'a part whose arrays differ in length';
  const rows = Math.max(0, Math.min(count, tile.f.count - part.offset));
  const entry = (k: number) => `entry ${part.offset + k}`;
  for (const [from, to, partners] of [
    [0, rows, tile.g],
    [rows, count, tile.f],
  ] as const) {
    const slice = (a: Float64Array | Uint32Array) => a.subarray(from, to);
    const bad =
      entriesProblem(slice(part.best) as Float64Array, slice(part.arg) as Uint32Array, partners, (k) => entry(from + k)) ??
      entriesProblem(slice(part.penRho) as Float64Array, slice(part.penArg) as Uint32Array, partners, (k) => `${entry(from + k)}'s penalized match`);
    if (bad !== null) return bad;
  }
  for (let k = 0; k < count; k++)
    if (part.penRho[k]! > part.best[k]!) return `${entry(k)}'s penalized match has |rho| ${part.penRho[k]}, above its best ${part.best[k]}`;
  return null;
}
