/**
 * matrix.arrow: the long table of matrix.csv as one Arrow IPC file (one
 * record batch), for pandas (`pd.read_feather`, `pyarrow.ipc.open_file`) and
 * polars (`pl.read_ipc`). Columns f, g, mode, direction are Utf8 (never
 * null); raw, null_mean, null_se, corrected, corrected_se and z are Float64,
 * null where the permutation null is off (raw never is). Non-finite values
 * (a z of a null with no spread) stay as they are: Float64 holds them.
 */
import { createRequire } from 'node:module';
import type * as ArrowModule from 'apache-arrow';
import type { Data, Field } from 'apache-arrow';
import { VALUE_COLUMNS, type ZooRow } from './matrix.js';

type Arrow = typeof ArrowModule;
let loaded: Arrow | undefined;
// apache-arrow takes about 0.2 s to load: only writing the outputs pays for it.
const arrow = (): Arrow => (loaded ??= createRequire(import.meta.url)('apache-arrow') as Arrow);

const TEXT_COLUMNS = ['f', 'g', 'mode', 'direction'] as const;

/** The schema's metadata: what the file is. */
export const ARROW_METADATA = { format: 'neurocorr-zoo-matrix', version: '1' } as const;

function utf8Data(values: readonly string[]): Data {
  const { Utf8, makeData } = arrow();
  const encoder = new TextEncoder();
  const bytes = values.map((v) => encoder.encode(v));
  const offsets = new Int32Array(values.length + 1);
  bytes.forEach((b, i) => (offsets[i + 1] = offsets[i]! + b.length));
  const data = new Uint8Array(offsets[values.length]!);
  bytes.forEach((b, i) => data.set(b, offsets[i]!));
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data });
}

function float64Data(values: readonly (number | null)[]): Data {
  const { Float64, makeData } = arrow();
  const data = new Float64Array(values.length);
  const valid = new Uint8Array(Math.ceil(values.length / 8));
  let nulls = 0;
  values.forEach((v, i) => {
    if (v === null) nulls++;
    else {
      data[i] = v;
      valid[i >> 3]! |= 1 << (i & 7);
    }
  });
  return makeData({ type: new Float64(), length: values.length, nullCount: nulls, data, ...(nulls > 0 ? { nullBitmap: valid } : {}) });
}

/** matrix.arrow's bytes (Arrow IPC file format). */
export function matrixArrow(rows: readonly ZooRow[]): Uint8Array {
  const { Field: FieldClass, Float64, RecordBatch, Schema, Struct, Table, Utf8, makeData, tableToIPC } = arrow();
  const fields: Field[] = [
    ...TEXT_COLUMNS.map((name) => new FieldClass(name, new Utf8(), false)),
    ...VALUE_COLUMNS.map((name) => new FieldClass(name, new Float64(), name !== 'raw')),
  ];
  const children = [
    ...TEXT_COLUMNS.map((name) => utf8Data(rows.map((r) => r[name]))),
    ...VALUE_COLUMNS.map((name) => float64Data(rows.map((r) => r.values[name]))),
  ];
  const schema = new Schema(fields, new Map(Object.entries(ARROW_METADATA)));
  const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children }));
  return tableToIPC(new Table([batch]), 'file');
}
