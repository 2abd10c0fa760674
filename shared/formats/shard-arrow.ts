/**
 * One shard as Arrow IPC (file format): columns `neuron` (uint32, or uint64
 * for sets past 2^32 neurons) and `z` (FixedSizeList<float32>[m]).
 * Encoding wraps the typed arrays without copying them; decoding returns the
 * z child buffer as it lies in the file.
 */
import { createRequire } from 'node:module';
import type * as ArrowModule from 'apache-arrow';
import type { FixedSizeList, Table } from 'apache-arrow';
import { InputError } from '../errors.js';

type Arrow = typeof ArrowModule;
let loaded: Arrow | undefined;
// apache-arrow takes about 0.2 s to load; only shard sets need it, so .npy and .safetensors runs never pay for it.
const arrow = (): Arrow => (loaded ??= createRequire(import.meta.url)('apache-arrow') as Arrow);

/** Loads apache-arrow now: a run that will write shards loads it before it allocates its buffers, not in the middle of its peak. */
export function preloadArrow(): void {
  arrow();
}

export function encodeShard(first: number, count: number, m: number, z: Float32Array, metadata: Record<string, string>): Uint8Array {
  const { Field, FixedSizeList, Float32, RecordBatch, Schema, Struct, Table, Uint32, makeData, tableToIPC } = arrow();
  const zType = new FixedSizeList(m, new Field('item', new Float32(), false));
  const neuron = Uint32Array.from({ length: count }, (_, k) => first + k);
  const fields = [new Field('neuron', new Uint32(), false), new Field('z', zType, false)];
  const schema = new Schema(fields, new Map(Object.entries(metadata)));
  const children = [
    makeData({ type: new Uint32(), length: count, nullCount: 0, data: neuron }),
    makeData({
      type: zType,
      length: count,
      nullCount: 0,
      child: makeData({ type: new Float32(), length: count * m, nullCount: 0, data: z.subarray(0, count * m) }),
    }),
  ];
  const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: count, nullCount: 0, children }));
  return tableToIPC(new Table([batch]), 'file');
}

export interface DecodedShard {
  /** Global neuron indices, in file order. */
  readonly neurons: Float64Array;
  /** count x m, neuron-major. */
  readonly z: Float32Array;
}

const SCHEMA_FIX =
  'write the shard with columns neuron: uint32 (or uint64) and z: fixed_size_list<float32>[M] (pyarrow: pa.list_(pa.float32(), M)), or regenerate it with `neurocorr prepare`';

/**
 * Decodes a shard's record batches; `file` names it in errors. With `into`,
 * z is copied straight there (it must hold count x m values) instead of into
 * a new array.
 */
export function decodeShard(bytes: Uint8Array, m: number, file: string, into?: Float32Array): DecodedShard {
  const { Type, tableFromIPC } = arrow();
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, `not a readable Arrow IPC file (${err instanceof Error ? err.message : String(err)})`, SCHEMA_FIX, {
      cause: err,
    });
  }
  const neuronField = table.schema.fields.find((f) => f.name === 'neuron');
  const zField = table.schema.fields.find((f) => f.name === 'z');
  const neuronOk =
    neuronField !== undefined && neuronField.type.typeId === Type.Int && !neuronField.type.isSigned && [32, 64].includes(neuronField.type.bitWidth);
  const zType = zField?.type as FixedSizeList | undefined;
  const zOk =
    zType !== undefined && zType.typeId === Type.FixedSizeList && zType.children[0]?.type.typeId === Type.Float && zType.children[0].type.precision === 1;
  if (!neuronOk || !zOk)
    throw new InputError('E_INPUT_FORMAT', file, `schema is ${table.schema.fields.map((f) => `${f.name}: ${f.type}`).join(', ')}`, SCHEMA_FIX);
  if (zType.listSize !== m) throw new InputError('E_INPUT_MISMATCH', file, `z holds ${zType.listSize} samples per neuron, the manifest says ${m}`, SCHEMA_FIX);
  const count = table.numRows;
  const neurons = new Float64Array(count);
  if (into !== undefined && into.length < count * m) {
    throw new InputError('E_INPUT_MISMATCH', file, `holds ${count} neurons, more than the manifest gives it`, 'regenerate the set with `neurocorr prepare`');
  }
  const z = into ?? new Float32Array(count * m);
  let at = 0;
  for (const batch of table.batches) {
    const ids = batch.getChild('neuron')!.data[0]!.values as Uint32Array | BigUint64Array;
    const values = batch.getChild('z')!.data[0]!.children[0]!.values as Float32Array;
    const rows = batch.numRows;
    const offset = batch.getChild('z')!.data[0]!.offset;
    for (let r = 0; r < rows; r++) neurons[at + r] = Number(ids[batch.getChild('neuron')!.data[0]!.offset + r]);
    z.set(values.subarray(offset * m, (offset + rows) * m), at * m);
    at += rows;
  }
  return { neurons, z: z.subarray(0, count * m) };
}
