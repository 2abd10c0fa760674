/** The paper's published values (Tables 2a-b, 3 and 4, MNIST and Fashion-MNIST rows), for the report to set beside ours. */
import type { DatasetName } from './data.js';

const NETS = ['Net1', 'Net2', 'Net3', 'Net4', 'Net5'] as const;

const TABLE2: Record<DatasetName, readonly (readonly number[])[]> = {
  mnist: [
    [1, 0.644, 0.646, 0.642, 0.576],
    [0, 1, 0.698, 0.699, 0.581],
    [0, 0, 1, 0.733, 0.575],
    [0, 0, 0, 1, 0.572],
  ],
  fashion: [
    [1, 0.2, 0.207, 0.214, 0.167],
    [0, 1, 0.278, 0.301, 0.208],
    [0, 0, 1, 0.289, 0.204],
    [0, 0, 0, 1, 0.221],
  ],
};

export const TABLE3: Record<DatasetName, Record<string, number>> = {
  mnist: { Net1: 0.921, Net2: 0.905, Net3: 0.93, Net4: 0.893, Net5: 0.562 },
  fashion: { Net1: 0.412, Net2: 0.407, Net3: 0.428, Net4: 0.453, Net5: 0.308 },
};

/** Accuracy before, after, relative degradation (fractions). */
export const TABLE4: Record<DatasetName, Record<string, readonly [number, number, number]>> = {
  mnist: {
    Net1: [0.962, 0.737, 0.234],
    Net2: [0.966, 0.657, 0.32],
    Net3: [0.96, 0.694, 0.277],
    Net4: [0.961, 0.674, 0.299],
    Net5: [0.929, 0.535, 0.424],
    CNN: [0.989, 0.708, 0.284],
  },
  fashion: {
    Net1: [0.868, 0.595, 0.315],
    Net2: [0.861, 0.569, 0.339],
    Net3: [0.842, 0.533, 0.367],
    Net4: [0.868, 0.581, 0.331],
    Net5: [0.775, 0.595, 0.232],
    CNN: [0.899, 0.595, 0.338],
  },
};

/** The published name of one of our nets (both Net4 sizes stand for the paper's Net4). */
export const publishedName = (name: string): string => (name === 'Net4s' ? 'Net4' : name);

/** Table 2's published cell for two of our nets, or null. */
export function table2(dataset: DatasetName, a: string, b: string): number | null {
  const i = NETS.indexOf(publishedName(a) as (typeof NETS)[number]);
  const j = NETS.indexOf(publishedName(b) as (typeof NETS)[number]);
  if (i < 0 || j < 0 || i === j) return null;
  return TABLE2[dataset][Math.min(i, j)]?.[Math.max(i, j)] ?? null;
}
