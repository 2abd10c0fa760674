/**
 * A Keras model.json's layer graph, checked before TensorFlow.js reads it.
 * tfjs builds a functional model by calling each layer once the nodes it
 * reads exist, and loops until every call is made: a cycle, a layer that is
 * not there, or a node a layer never makes keeps it looping for ever (deaf
 * to signals, since the loop never yields). The same calls are simulated
 * here on names alone, and a call that could never be made is refused,
 * naming the layer.
 */
import { InputError } from '../shared/errors.js';

const FIX = 're-export the model with tensorflowjs_converter from a Keras model that loads: its layers must form a graph without cycles';

/** Layers that hold a node of their own once built (an input, a nested model): calls to them make nodes from 1 on. */
const OWN_NODE = new Set(['InputLayer', 'Model', 'Functional', 'Sequential']);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Call {
  readonly layer: string;
  /** [layer, node index] of each tensor the call reads. */
  readonly reads: readonly (readonly [string, number])[];
}

/** The model config that lists the layers: modelTopology itself, or its model_config. */
function modelConfig(topology: Record<string, unknown>): Record<string, unknown> | null {
  const model = isRecord(topology['model_config']) ? topology['model_config'] : topology;
  return isRecord(model['config']) ? model['config'] : null;
}

/** Refuses a layers-model whose layer graph tfjs could never finish building (here or in a nested model). */
export function checkLayerGraph(topology: Record<string, unknown>, file: string): void {
  const config = modelConfig(topology);
  if (config !== null) checkLayers(config, file, []);
}

/** Nested models deeper than this are refused (each level is checked by a recursive call). */
const MAX_NESTING = 64;

function checkLayers(config: Record<string, unknown>, file: string, outer: readonly string[]): void {
  if (outer.length > MAX_NESTING) {
    throw new InputError('E_INPUT_FORMAT', file, `it nests models more than ${MAX_NESTING} deep (at "${outer.at(-1)}")`, FIX);
  }
  const layers = Array.isArray(config['layers']) ? config['layers'].filter(isRecord) : [];
  const kinds = new Map<string, string>();
  const calls: Call[] = [];
  for (const layer of layers) {
    const name = layer['name'];
    if (typeof name !== 'string') continue;
    kinds.set(name, String(layer['class_name']));
    if (isRecord(layer['config']) && Array.isArray(layer['config']['layers'])) checkLayers(layer['config'], file, [...outer, name]);
    const nodes = layer['inbound_nodes'];
    if (!Array.isArray(nodes)) continue;
    for (const node of nodes) if (Array.isArray(node)) calls.push({ layer: name, reads: node.flatMap(reference) });
  }
  const made = new Map([...kinds].map(([name, kind]) => [name, OWN_NODE.has(kind) ? 1 : 0]));
  // A call waits on the first node it reads that is not made yet; each call made wakes those waiting on its layer.
  const blocker = (call: Call) => call.reads.find(([layer, node]) => (made.get(layer) ?? 0) <= node)?.[0];
  const waiting = new Map<string, Call[]>();
  const ready: Call[] = [];
  const place = (call: Call) => {
    const on = blocker(call);
    const list = on === undefined ? ready : waiting.get(on);
    if (list !== undefined) list.push(call);
    else waiting.set(on!, [call]);
  };
  calls.forEach(place);
  for (let call = ready.pop(); call !== undefined; call = ready.pop()) {
    made.set(call.layer, (made.get(call.layer) ?? 0) + 1);
    const woken = waiting.get(call.layer) ?? [];
    waiting.delete(call.layer);
    woken.forEach(place);
  }
  const left = [...waiting.values()].flat();
  if (left.length > 0) throw stuck(left, kinds, made, file, outer);
}

/** A tensor reference [layer, node, tensor, kwargs?] as [layer, node]; anything else is left to tfjs to refuse. */
function reference(entry: unknown): [string, number][] {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string') return [];
  const node = entry[1];
  return [[entry[0], typeof node === 'number' && Number.isSafeInteger(node) && node >= 0 ? node : 0]];
}

function stuck(
  calls: readonly Call[],
  kinds: ReadonlyMap<string, string>,
  made: ReadonlyMap<string, number>,
  file: string,
  outer: readonly string[],
): InputError {
  const where = outer.length > 0 ? ` (in the nested model ${outer.map((n) => `"${n}"`).join(' > ')})` : '';
  const fail = (problem: string) => new InputError('E_INPUT_FORMAT', file, `${problem}${where}; TensorFlow.js would never finish building it`, FIX);
  for (const call of calls) {
    const missing = call.reads.find(([layer]) => !kinds.has(layer));
    if (missing !== undefined) return fail(`layer "${call.layer}" reads layer "${missing[0]}", which the model does not have`);
  }
  const cycle = findCycle(calls);
  if (cycle !== null) return fail(`its layers form a cycle: ${cycle.map((n) => `"${n}"`).join(' -> ')}`);
  // The call that waits on a layer no waiting call would call again: the node it reads is never made.
  const waiting = new Set(calls.map((c) => c.layer));
  const unmade = (c: Call) => c.reads.find(([l, n]) => (made.get(l) ?? 0) <= n)!;
  const call = calls.find((c) => !waiting.has(unmade(c)[0])) ?? calls[0]!;
  const [layer, node] = unmade(call);
  return fail(`layer "${call.layer}" reads node ${node} of layer "${layer}", which is called only ${made.get(layer) ?? 0} time(s)`);
}

/** A cycle among the calls that wait (each layer pointing at the layers it reads), as layer names, first repeated last; or null. */
function findCycle(calls: readonly Call[]): string[] | null {
  const reads = new Map<string, string[]>();
  for (const call of calls) {
    const list = reads.get(call.layer) ?? [];
    if (list.length === 0) reads.set(call.layer, list);
    list.push(...call.reads.map(([l]) => l));
  }
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  // Depth first, with an explicit stack: a long chain must not overflow the call stack.
  for (const start of reads.keys()) {
    if (state.has(start)) continue;
    const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
    state.set(start, 'open');
    path.push(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const to = reads.get(top.name)?.[top.next++];
      if (to === undefined) {
        state.set(top.name, 'done');
        stack.pop();
        path.pop();
      } else if (state.get(to) === 'open') {
        return [...path.slice(path.indexOf(to)), to];
      } else if (!state.has(to) && reads.has(to)) {
        state.set(to, 'open');
        stack.push({ name: to, next: 0 });
        path.push(to);
      }
    }
  }
  return null;
}
