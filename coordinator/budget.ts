/**
 * `--memory` is kept or refused: a shard is read whole, so a budget below
 * what a job's shard sets need (shared/job/schedule.ts shardBudget) would be
 * overrun. It is refused before anything is read or computed, naming the
 * shard sets, their largest shards and the fixes.
 */
import { describeBytes as bytes, flagSize as sizeUp } from '../shared/bytes.js';
import { UsageError, type OptionNamer } from '../shared/errors.js';
import { isShardPlan, type ModelPlan } from '../shared/formats/index.js';
import { shardBudget, type BudgetModel, type JobPairInput, type ShardBudget } from '../shared/job/index.js';
import { MIN_MEMORY, prepareMemoryFor } from '../prepare/prepare.js';

const MIB = 2 ** 20;

/** Refuses (a UsageError, exit 2) a `memory` below what the pairs' shard sets need. */
export function checkShardBudget(inputs: readonly { readonly path: string; readonly plan: ModelPlan }[], pairs: readonly JobPairInput[], memory: number): void {
  const models = inputs.map(({ plan }): BudgetModel | null =>
    isShardPlan(plan) ? { m: plan.m, largest: Math.max(0, ...plan.manifest.shards.map((s) => s.count)) } : null,
  );
  const budget = shardBudget(models, pairs, memory);
  if (memory >= budget.need) return;
  // The sets that do not fit are named; those whose shards are larger than the size that fits are to be re-prepared.
  const over = new Map(budget.over.map((k) => [inputs[k]!.path, models[k]!]));
  const large = [...over].filter(([, x]) => budget.shardNeurons === 0 || x.largest > budget.shardNeurons);
  const job = budget.rule === 'pair' ? `scoring ${inputs[pairs[0]!.f]!.path} against ${inputs[pairs[0]!.g]!.path}` : `scoring these ${pairs.length} pairs`;
  throw new UsageError((o) => {
    const largest = [...over].map(([path, x]) => `${path}: ${x.largest} neurons x ${x.m} values x 4 = ${bytes(x.largest * x.m * 4)}`);
    return (
      `${o('memory')} ${bytes(memory)} is below what ${job} needs: ${bytes(budget.need)}, ${how(budget, pairs)}. ` +
      `Largest shards, decoded: ${largest.join('; ')}. Fix: ${o('memory')} ${sizeUp(budget.need)} or more${reprepare(o, budget, large)}.`
    );
  });
}

function how(budget: ShardBudget, pairs: readonly JobPairInput[]): string {
  if (budget.rule === 'pair') return budget.sets === 2 ? "one side's largest shard held beside a buffer for the other's" : 'its largest shard';
  const self = pairs.some((p) => p.f === p.g) ? ' (two for a set paired with itself)' : '';
  return `its ${budget.sets} shard sets sharing it equally, each with a buffer of its largest shard per shard one tile reads of it${self}`;
}

function reprepare(o: OptionNamer, budget: ShardBudget, sets: readonly (readonly [string, BudgetModel])[]): string {
  const n = budget.shardNeurons;
  if (n === 0) return ' (no shard size fits: one neuron per shard would still need more)';
  const m = Math.max(...sets.map(([, x]) => x.m));
  const prepareMemory = Math.floor(prepareMemoryFor(n, m) / MIB) * MIB;
  const alternative = prepareMemory >= MIN_MEMORY ? ` (or prepare ${o('memory')} ${prepareMemory / MIB}MiB or less)` : '';
  const paths = sets.map(([path]) => path).join(' and ');
  return `, or re-prepare ${paths} with prepare ${o('shardNeurons')} ${n}${alternative} so that ${sets.length > 1 ? 'they fit' : 'it fits'}`;
}
