/**
 * The heatmaps' model order: average-linkage (UPGMA) agglomerative clustering
 * on a symmetric distance, leaves read off the dendrogram.
 *
 * - Distance between models i and j: d = 1 - (C[i][j] + C[j][i]) / 2, with C
 *   the headline mode's forward score matrix (corrected by the permutation
 *   null when every pair has it, else raw). Forward is asymmetric, so both
 *   orientations are averaged. A missing or non-finite score makes d infinite
 *   (such models join last). The diagonal is not used.
 * - Average linkage: the distance between two clusters is the mean of d over
 *   every pair of their members, computed afresh from the leaves each time
 *   (no running updates, so rounding never depends on the merge history).
 * - Each step merges the closest two clusters. Ties (equal distances, bit for
 *   bit) go to the pair whose members come first in the zoo's model order:
 *   clusters are compared by their first (smallest-index) model, the lower
 *   pair of (first of A, first of B) wins. The result is therefore a function
 *   of the scores and the model order alone.
 * - Leaf order: the dendrogram read depth first, at each merge the cluster
 *   holding the earlier model first. Closely related models thus sit next to
 *   each other, and a block of related models forms a square on the heatmap.
 */

/** One merge: clusters are numbered as in SciPy's linkage (leaves 0..K-1, then K + step). */
export interface Merge {
  readonly left: number;
  readonly right: number;
  readonly distance: number;
  /** Models in the merged cluster. */
  readonly size: number;
}

export interface Dendrogram {
  /** Model indices in leaf order. */
  readonly order: readonly number[];
  /** K - 1 merges, closest first. */
  readonly merges: readonly Merge[];
}

/** The symmetric distance matrix d = 1 - (C[i][j] + C[j][i]) / 2, infinite where a score is missing or not finite. */
export function symmetricDistance(scores: readonly (readonly (number | null)[])[]): number[][] {
  const k = scores.length;
  return Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) => {
      if (i === j) return 0;
      const [a, b] = [scores[i]![j] ?? null, scores[j]![i] ?? null];
      if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
      return 1 - (a + b) / 2;
    }),
  );
}

interface Cluster {
  readonly id: number;
  /** Model indices, ascending. */
  readonly members: readonly number[];
  readonly leaves: readonly number[];
}

function linkage(a: Cluster, b: Cluster, d: readonly (readonly number[])[]): number {
  let sum = 0;
  for (const i of a.members) for (const j of b.members) sum += d[i]![j]!;
  const mean = sum / (a.members.length * b.members.length);
  return Number.isNaN(mean) ? Infinity : mean;
}

/** Average-linkage clustering of `distance` (K x K, symmetric), with the deterministic tie-breaking and leaf order described above. */
export function averageLinkage(distance: readonly (readonly number[])[]): Dendrogram {
  const k = distance.length;
  let clusters: Cluster[] = Array.from({ length: k }, (_, i) => ({ id: i, members: [i], leaves: [i] }));
  const merges: Merge[] = [];
  while (clusters.length > 1) {
    // Clusters stay sorted by their first model, so scanning a < b in order visits pairs in tie-breaking order.
    let best: { a: number; b: number; d: number } | null = null;
    for (let a = 0; a < clusters.length; a++) {
      for (let b = a + 1; b < clusters.length; b++) {
        const d = linkage(clusters[a]!, clusters[b]!, distance);
        if (best === null || d < best.d) best = { a, b, d };
      }
    }
    const { a, b, d } = best!;
    const [left, right] = [clusters[a]!, clusters[b]!];
    const merged: Cluster = {
      id: k + merges.length,
      members: [...left.members, ...right.members].sort((x, y) => x - y),
      leaves: [...left.leaves, ...right.leaves],
    };
    merges.push({ left: left.id, right: right.id, distance: d, size: merged.members.length });
    clusters = clusters.filter((_, i) => i !== a && i !== b);
    clusters.splice(a, 0, merged); // its first model is left's, so the order by first model holds
  }
  return { order: clusters[0]?.leaves ?? [], merges };
}
