/**
 * The coordinator's check of what a result claims: a few of its entries,
 * picked at random where a sender cannot foresee them, are computed again
 * from the standardized models (O(M) each) and must match. An entry claims
 * that neuron u's best match is v with |rho| r: r must be |rho(u, v)|,
 * within the kernels' float32 error. A forged value (a score of 0.999 for a
 * pair that correlates at 0.3) is caught at the first entry checked; a
 * result that names real but worse partners is what recomputing whole tiles
 * on another worker is for.
 */
import { randomInt } from 'node:crypto';
import type { PlannedSet } from '../../shared/formats/index.js';
import type { JobPairInput } from '../../shared/job/index.js';
import { openJobSources } from '../embedded.js';
import { bestRhoBound, gatherSample } from '../../shared/core/index.js';
import { operands, type JobPlan, type JobTile, type ModelSource, type NullTile, type SuperTile, type TileOutcome } from '../../shared/job/index.js';
import type { SuperPart, TileResult } from '../../shared/tiles/index.js';

/** A claim to check: neuron `row` of one operand, its partner `partner` of the other, and the |rho| claimed. */
interface Claim {
  readonly what: string;
  readonly u: Float32Array;
  readonly v: Float32Array;
  readonly rho: number;
}

/** Entries of a result: a kernel tile's rows then columns, or a part's. */
export function entries(outcome: TileOutcome): number {
  return outcome.kind === 'part' ? outcome.part.best.length : outcome.result.rowBest.length + outcome.result.colBest.length;
}

export class ResultSampler {
  /** How far two honest float32 results of one pair may lie apart. */
  readonly tolerance: number;
  private readonly scratch: Float32Array;

  constructor(
    private readonly plan: JobPlan,
    private readonly sources: readonly ModelSource[],
    /** Entries checked per result. */
    private readonly perResult: number,
  ) {
    const m = plan.models[0]?.m ?? 0;
    // Two float32 results of the same pair may each be off the float64 value by the kernels' bound.
    this.tolerance = 2 * bestRhoBound(m, 'native');
    this.scratch = new Float32Array(m);
  }

  /** Null when the sampled entries hold; else the first that does not, in words. */
  check(tile: JobTile, outcome: TileOutcome): string | null {
    const n = entries(outcome);
    for (let s = 0; s < Math.min(this.perResult, n); s++) {
      const bad = this.entry(tile, outcome, randomInt(n));
      if (bad !== null) return bad;
    }
    return null;
  }

  /** Whether entry `k` of a result (rows then columns of a kernel tile; a part's entries) claims its pair's true |rho|. */
  holds(tile: JobTile, outcome: TileOutcome, k: number): boolean {
    return this.entry(tile, outcome, k) === null;
  }

  private entry(tile: JobTile, outcome: TileOutcome, k: number): string | null {
    if (outcome.kind === 'part') return tile.kind === 'super' ? this.partEntry(tile, outcome.part, k) : 'a part for a kernel tile';
    if (tile.kind === 'super') return 'a kernel tile result for a super-tile';
    return this.kernelEntry(tile, outcome.result, k);
  }

  private kernelEntry(tile: Exclude<JobTile, SuperTile>, result: TileResult, k: number): string | null {
    const { rows, cols } = operands(this.plan, tile);
    const isRow = k < result.rowBest.length;
    const j = k - result.rowBest.length;
    const [own, partner] = isRow ? [rows.block.start + k, result.rowArg[k]!] : [cols.block.start + j, result.colArg[j]!];
    const [r, c] = isRow ? [own, partner] : [partner, own];
    return this.judge(
      (u, v) => ({ what: `${isRow ? 'row' : 'column'} ${own} with partner ${partner}`, u, v, rho: isRow ? result.rowBest[k]! : result.colBest[j]! }),
      rows.model,
      r,
      tile.kind === 'null' ? { tile, position: c } : { model: cols.model, neuron: c },
    );
  }

  private partEntry(tile: SuperTile, part: SuperPart, k: number): string | null {
    const pair = this.plan.pairs[tile.pair]!;
    const entry = part.offset + k;
    const inF = entry < tile.f.count;
    const own = inF ? tile.f.start + entry : tile.g.start + entry - tile.f.count;
    const [model, other] = inF ? [pair.f, pair.g] : [pair.g, pair.f];
    for (const [partner, rho, mode] of [
      [part.arg[k]!, part.best[k]!, 'best'],
      [part.penArg[k]!, part.penRho[k]!, 'penalized'],
    ] as const) {
      const bad = this.judge((u, v) => ({ what: `entry ${entry} (neuron ${own}), its ${mode} match ${partner}`, u, v, rho }), model, own, {
        model: other,
        neuron: partner,
      });
      if (bad !== null) return bad;
    }
    return null;
  }

  /** Computes |rho| of neuron `neuron` of `model` against the other side (a neuron, or a null tile's permuted sample row), and compares. */
  private judge(
    claim: (u: Float32Array, v: Float32Array) => Claim,
    model: number,
    neuron: number,
    other: { readonly model: number; readonly neuron: number } | { readonly tile: NullTile; readonly position: number },
  ): string | null {
    const source = this.sources[model]!;
    const u = source.acquire(neuron, 1);
    try {
      const v = 'tile' in other ? this.sampleRow(other.tile, other.position) : this.sources[other.model]!.acquire(other.neuron, 1);
      try {
        const c = claim(u, v);
        let dot = 0;
        for (let t = 0; t < u.length; t++) dot += u[t]! * v[t]!;
        const rho = Math.abs(dot);
        if (Math.abs(rho - c.rho) <= this.tolerance) return null;
        return `its ${c.what} claims |rho| ${c.rho}, but that pair's |rho| is ${rho}`;
      } finally {
        if (!('tile' in other)) this.sources[other.model]!.release(other.neuron);
      }
    } finally {
      source.release(neuron);
    }
  }

  /** Row `position` of a null tile's sample block, permuted as the workers gather it. */
  private sampleRow(tile: NullTile, position: number): Float32Array {
    const pair = this.plan.pairs[tile.pair]!;
    const source = this.sources[tile.side === 0 ? pair.f : pair.g]!;
    const held: number[] = [];
    const row = (i: number): Float32Array => {
      held.push(i);
      return source.acquire(i, 1);
    };
    try {
      return gatherSample(pair.null!, { k: tile.k, side: tile.side, sample: { ...tile.sample, start: position, count: 1 } }, row, this.scratch).slice();
    } finally {
      for (const i of held) source.release(i);
    }
  }
}

/** Reads and standardizes a job's models (shard sets within `memory`) to check its results against. */
export async function openSampler(
  job: { readonly paths: readonly string[]; readonly planned: PlannedSet; readonly pairs: readonly JobPairInput[]; readonly memory: number },
  plan: JobPlan,
  perResult: number,
): Promise<ResultSampler> {
  const sources = openJobSources(job, job.memory);
  for (const source of sources) await source.load();
  return new ResultSampler(plan, sources, perResult);
}
