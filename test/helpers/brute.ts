/**
 * An independent float64 brute force of the whole score, straight from the
 * definition in docs/METHOD.md (What is computed), written without any project code.
 */

export interface BruteLayer {
  /** Neuron-major activation vectors: vectors[j] has m samples. */
  readonly vectors: readonly Float64Array[];
  readonly depth: number;
}

export interface BruteResult {
  readonly forward: { paper: number; penalized: number };
  readonly backward: { paper: number; penalized: number };
  readonly symmetric: { paper: number; penalized: number };
  /** Best |rho| of every neuron of F, then of G. */
  readonly bestF: number[];
  readonly bestG: number[];
  readonly constantF: number;
  readonly constantG: number;
}

const TIE = 1e-9;

function standardize(v: Float64Array): Float64Array | null {
  let mean = 0;
  for (const x of v) mean += x;
  mean /= v.length;
  let sq = 0;
  let maxAbs = 0;
  for (const x of v) {
    sq += (x - mean) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(x));
  }
  const norm = Math.sqrt(sq);
  if (norm === 0 || norm < 1e-12 * maxAbs) return null;
  return v.map((x) => (x - mean) / norm);
}

interface Neuron {
  z: Float64Array | null;
  depth: number;
}

const flatten = (layers: readonly BruteLayer[]): Neuron[] => layers.flatMap((l) => l.vectors.map((v) => ({ z: standardize(v), depth: l.depth })));

function direction(from: Neuron[], to: Neuron[], exclude: boolean) {
  let paperSum = 0;
  let penSum = 0;
  let count = 0;
  const best: number[] = [];
  for (const u of from) {
    let b = -1;
    let arg = -1;
    let pen = -1;
    to.forEach((v, j) => {
      let r = 0;
      if (u.z !== null && v.z !== null) {
        for (let k = 0; k < u.z.length; k++) r += u.z[k]! * v.z[k]!;
      }
      r = Math.abs(r);
      // Values within TIE of each other are the same number up to float64 rounding: an exact tie.
      if (r > b + TIE) {
        b = r;
        arg = j;
      }
      pen = Math.max(pen, r / (1 + Math.abs(u.depth - v.depth)));
    });
    best.push(b);
    if (exclude && u.z === null) continue;
    paperSum += b / (1 + Math.abs(u.depth - to[arg]!.depth));
    penSum += pen;
    count++;
  }
  return { paper: paperSum / count, penalized: penSum / count, best };
}

export function bruteForce(f: readonly BruteLayer[], g: readonly BruteLayer[], exclude = false): BruteResult {
  const nf = flatten(f);
  const ng = flatten(g);
  const fw = direction(nf, ng, exclude);
  const bw = direction(ng, nf, exclude);
  return {
    forward: { paper: fw.paper, penalized: fw.penalized },
    backward: { paper: bw.paper, penalized: bw.penalized },
    symmetric: { paper: (fw.paper + bw.paper) / 2, penalized: (fw.penalized + bw.penalized) / 2 },
    bestF: fw.best,
    bestG: bw.best,
    constantF: nf.filter((n) => n.z === null).length,
    constantG: ng.filter((n) => n.z === null).length,
  };
}
