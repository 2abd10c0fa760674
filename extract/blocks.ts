/**
 * Which layers are block outputs, the layers extract takes by default. One
 * rule for every graph (a LayersModel's layers, a GraphModel's nodes), in
 * this order:
 *
 * 1. residual blocks: an add of two or more layer outputs, or the activation
 *    that follows it (its only consumer);
 * 2. inception blocks: a concatenation, unless every consumer is another
 *    concatenation (an inner one);
 * 3. when neither exists, stage ends: the pooling layers (VGG's block pools);
 * 4. global pooling layers (and pooling layers whose maps are 1 x 1, as
 *    where AvgPool + Squeeze pools globally), and the model's outputs;
 * 5. when 1-3 found nothing, every weighted layer (dense, conv), or the
 *    activation that follows it (an MLP's hidden layers).
 *
 * "Follows" walks on while the only consumer is an activation or a
 * normalization (BatchNormalization, BiasAdd).
 */

export interface GraphNode {
  readonly name: string;
  readonly kind: string;
  /** The selectable nodes it reads (weights and constants left out). */
  readonly inputs: readonly string[];
}

export interface BlockKinds {
  readonly add: ReadonlySet<string>;
  readonly concat: ReadonlySet<string>;
  readonly pool: ReadonlySet<string>;
  readonly globalPool: ReadonlySet<string>;
  readonly weighted: ReadonlySet<string>;
  /** Kinds "follows" walks through: activations and normalizations. */
  readonly after: ReadonlySet<string>;
}

/** The names of the block outputs among `nodes` (in graph order), given the model's output names. */
export function blockOutputs(nodes: readonly GraphNode[], outputs: readonly string[], kinds: BlockKinds): Set<string> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const consumers = new Map<string, GraphNode[]>(nodes.map((n) => [n.name, []]));
  for (const node of nodes) for (const input of node.inputs) consumers.get(input)?.push(node);
  const follow = (node: GraphNode): string => {
    let at = node;
    // A chain of activations that loops back (a cyclic graph) ends where it closes.
    for (const seen = new Set([at.name]); ; seen.add(at.name)) {
      const next = consumers.get(at.name) ?? [];
      if (next.length !== 1 || !kinds.after.has(next[0]!.kind) || seen.has(next[0]!.name)) return at.name;
      at = next[0]!;
    }
  };
  const blocks = new Set<string>();
  for (const node of nodes) {
    if (kinds.add.has(node.kind) && node.inputs.length >= 2) blocks.add(follow(node));
    const readers = consumers.get(node.name) ?? [];
    if (kinds.concat.has(node.kind) && !(readers.length > 0 && readers.every((r) => kinds.concat.has(r.kind)))) blocks.add(node.name);
  }
  const structured = blocks.size > 0;
  if (!structured) for (const node of nodes) if (kinds.pool.has(node.kind)) blocks.add(node.name);
  const staged = blocks.size > 0;
  for (const node of nodes) if (kinds.globalPool.has(node.kind)) blocks.add(node.name);
  for (const name of outputs) if (byName.has(name)) blocks.add(name);
  if (!staged) for (const node of nodes) if (kinds.weighted.has(node.kind)) blocks.add(follow(node));
  return blocks;
}

/** A pooling layer that pools its maps to 1 x 1 (rule 4), once its per-probe shape is known. */
export function poolsGlobally(kind: string, shape: readonly (number | null)[], kinds: BlockKinds): boolean {
  return kinds.pool.has(kind) && shape.length === 3 && shape.filter((d) => d === 1).length >= 2;
}
