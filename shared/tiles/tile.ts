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

/** A contiguous neuron range of a model; unlike a block it may cross layers (a super-tile's side). */
export interface Range {
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

/**
 * A run of a super-tile's folded result. A super-tile's entries are its F
 * range's neurons, then its G range's; entry `offset + k` holds a neuron's
 * best |rho| and partner (paper mode) and the |rho| and partner of its best
 * penalized match (penalized mode). The penalized value itself is not sent:
 * whoever merges recomputes it from the two depths, exactly as the fold did.
 */
export interface SuperPart {
  readonly offset: number;
  readonly best: Float64Array;
  readonly arg: Uint32Array;
  readonly penRho: Float64Array;
  readonly penArg: Uint32Array;
}

/** Entries [from, from + count) of a part, as a part of their own. */
export function slicePart(part: SuperPart, from: number, count: number): SuperPart {
  const [a, b] = [from - part.offset, from - part.offset + count];
  return { offset: from, best: part.best.subarray(a, b), arg: part.arg.subarray(a, b), penRho: part.penRho.subarray(a, b), penArg: part.penArg.subarray(a, b) };
}

/** The tie rule every fold and reduction shares: a larger value wins, then the smaller partner index. */
export function beats(value: number, partner: number, bestValue: number, bestPartner: number): boolean {
  return value > bestValue || (value === bestValue && partner < bestPartner);
}
