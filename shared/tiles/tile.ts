/**
 * Blocks and tiles. A block is a contiguous neuron range inside one layer, so
 * the depth penalty is constant across a tile.
 */

export interface Block {
  /** Index into the model's layers. */
  readonly layer: number;
  /** First global neuron index. */
  readonly start: number;
  readonly count: number;
}

export interface Tile {
  readonly id: number;
  readonly f: Block;
  readonly g: Block;
}

/** A tile's best matches. Args are global neuron indices of the other model. */
export interface TileResult {
  /** Best |rho| of each F neuron of the tile over the G block. */
  readonly rowBest: Float64Array;
  readonly rowArg: Uint32Array;
  /** Best |rho| of each G neuron of the tile over the F block. */
  readonly colBest: Float64Array;
  readonly colArg: Uint32Array;
}

/** Blocks of at most `blockSize` neurons; a block also ends at every index in `cuts` (shard starts, when streaming). */
export function splitBlocks(layers: readonly { readonly start: number; readonly count: number }[], blockSize: number, cuts: readonly number[] = []): Block[] {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`block size must be a positive integer, got ${blockSize}`);
  const sortedCuts = [...cuts].sort((a, b) => a - b);
  const blocks: Block[] = [];
  let c = 0;
  layers.forEach((layer, index) => {
    const end = layer.start + layer.count;
    for (let start = layer.start; start < end;) {
      while (c < sortedCuts.length && sortedCuts[c]! <= start) c++;
      const stop = Math.min(start + blockSize, end, sortedCuts[c] ?? end);
      blocks.push({ layer: index, start, count: stop - start });
      start = stop;
    }
  });
  return blocks;
}

/**
 * Tiles in F-major order: one F block stays hot while every G block streams
 * past it. Ids are positions in this order, so a plan is reproducible.
 */
export function planTiles(fBlocks: readonly Block[], gBlocks: readonly Block[]): Tile[] {
  const tiles: Tile[] = [];
  for (const f of fBlocks) for (const g of gBlocks) tiles.push({ id: tiles.length, f, g });
  return tiles;
}

/**
 * A tile result lives in one ArrayBuffer (rowBest, colBest as float64, then
 * rowArg, colArg as uint32) so it moves between threads, and later over the
 * wire, as a single buffer.
 */
export function tileResultBytes(nf: number, ng: number): number {
  return (nf + ng) * 12;
}

export function tileResultView(buffer: ArrayBuffer, nf: number, ng: number, byteOffset = 0): TileResult {
  if (buffer.byteLength - byteOffset < tileResultBytes(nf, ng)) {
    throw new RangeError(`tile result buffer holds ${buffer.byteLength - byteOffset} bytes, ${nf}x${ng} needs ${tileResultBytes(nf, ng)}`);
  }
  const argsAt = byteOffset + (nf + ng) * 8;
  return {
    rowBest: new Float64Array(buffer, byteOffset, nf),
    colBest: new Float64Array(buffer, byteOffset + nf * 8, ng),
    rowArg: new Uint32Array(buffer, argsAt, nf),
    colArg: new Uint32Array(buffer, argsAt + nf * 4, ng),
  };
}

export function allocTileResult(nf: number, ng: number): TileResult {
  return tileResultView(new ArrayBuffer(tileResultBytes(nf, ng)), nf, ng);
}

/** An empty result to fold into: every best -1 and every partner 0xffffffff, as the reduction starts. */
export function emptyTileResult(nf: number, ng: number): TileResult {
  const result = allocTileResult(nf, ng);
  result.rowBest.fill(-1);
  result.colBest.fill(-1);
  result.rowArg.fill(0xffffffff);
  result.colArg.fill(0xffffffff);
  return result;
}

/**
 * Folds a kernel tile's result into a larger tile's (a super-tile of the
 * same layer pair): its rows start `rowOffset` into `into`'s rows, its
 * columns `colOffset` into its columns. Larger |rho| wins, then the smaller
 * partner: the reduction's rule, so the fold's order does not matter.
 */
export function foldTileResult(into: TileResult, rowOffset: number, colOffset: number, part: TileResult): void {
  foldBests(into.rowBest, into.rowArg, rowOffset, part.rowBest, part.rowArg);
  foldBests(into.colBest, into.colArg, colOffset, part.colBest, part.colArg);
}

/** The tie rule every fold and reduction shares: a larger value wins, then the smaller partner index. */
export function beats(value: number, partner: number, bestValue: number, bestPartner: number): boolean {
  return value > bestValue || (value === bestValue && partner < bestPartner);
}

function foldBests(best: Float64Array, arg: Uint32Array, offset: number, bests: Float64Array, args: Uint32Array): void {
  for (let k = 0; k < bests.length; k++) {
    const i = offset + k;
    const b = bests[k]!;
    const a = args[k]!;
    if (beats(b, a, best[i]!, arg[i]!)) {
      best[i] = b;
      arg[i] = a;
    }
  }
}
