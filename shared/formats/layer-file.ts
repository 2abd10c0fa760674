/**
 * Positioned reads of a layer's probe rows straight from its file, so that
 * no whole file is ever held in memory. Reads go through one reusable buffer:
 * fresh memory is expensive to fault in (about 3 ms per MiB on these VMs),
 * and every pass over a layer would otherwise pay it again.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readExactly, regularFileSize, requireRegularFile } from './input-file.js';
import { ITEMSIZE, type FloatArray, type FloatDtype } from './npy.js';

let scratch = new ArrayBuffer(0);

/** A view over the shared read buffer; valid until the next read. */
function scratchBytes(bytes: number): Uint8Array {
  if (scratch.byteLength < bytes) scratch = new ArrayBuffer(Math.max(bytes, scratch.byteLength * 2));
  return new Uint8Array(scratch, 0, bytes);
}

/** The first bytes of a regular file (up to `want`, at most its size) and its size. */
export function readHead(file: string, want: number): { head: Uint8Array; size: number } {
  regularFileSize(file);
  const fd = openSync(file, 'r');
  try {
    const stats = fstatSync(fd);
    requireRegularFile(file, stats);
    const size = stats.size;
    const head = new Uint8Array(Math.min(want, size));
    readExactly(fd, head, 0, file);
    return { head, size };
  } finally {
    closeSync(fd);
  }
}

/** Values [from, from + width) of probe rows [start, start + count), row after row. */
export type ProbeReader = (start: number, count: number, from?: number, width?: number) => FloatArray;

/**
 * Reads probes [start, start + count) of a probe-major array stored at
 * `offset` in `file`. The result is a view over a shared buffer, valid until
 * the next read by any reader.
 */
export function probeReader(file: string, offset: number, dtype: FloatDtype, perProbe: number): ProbeReader {
  const item = ITEMSIZE[dtype];
  const rowBytes = perProbe * item;
  return (start, count, from = 0, width = perProbe) => {
    const bytes = scratchBytes(count * width * item);
    const fd = openSync(file, 'r');
    try {
      if (width === perProbe) readExactly(fd, bytes, offset + start * rowBytes, file);
      else {
        // A column range: one positioned read per row.
        for (let r = 0; r < count; r++) {
          readExactly(fd, bytes.subarray(r * width * item, (r + 1) * width * item), offset + (start + r) * rowBytes + from * item, file);
        }
      }
    } finally {
      closeSync(fd);
    }
    return dtype === 'f4' ? new Float32Array(bytes.buffer, 0, count * width) : new Float64Array(bytes.buffer, 0, count * width);
  };
}
