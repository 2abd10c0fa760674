/** Little-endian binary writer and reader for the protocol and checkpoints. */
import { InternalError } from './errors.js';

// Typed arrays are written as raw bytes in the machine's order; every supported platform is little-endian.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new InternalError('neurocorr needs a little-endian machine');

export class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }
  u8(v: number): this {
    this.push(Uint8Array.of(v));
    return this;
  }
  u32(...values: number[]): this {
    const b = new Uint8Array(4 * values.length);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setUint32(4 * i, v, true));
    this.push(b);
    return this;
  }
  f64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.push(b);
    return this;
  }
  str(s: string): this {
    const bytes = new TextEncoder().encode(s);
    return this.u32(bytes.length).bytes(bytes);
  }
  bytes(b: Uint8Array): this {
    this.push(b);
    return this;
  }
  /** The raw little-endian bytes of a typed array (this machine is little-endian; see the check below). */
  array(a: ArrayBufferView): this {
    return this.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export class Reader {
  private at = 0;
  private readonly view: DataView;
  constructor(
    private readonly data: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }
  private need(n: number): void {
    if (this.at + n > this.data.length) throw new InternalError(`truncated ${this.what}: needs ${this.at + n} bytes, has ${this.data.length}`);
  }
  u8(): number {
    this.need(1);
    return this.data[this.at++]!;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.at, true);
    this.at += 8;
    return v;
  }
  str(): string {
    return new TextDecoder().decode(this.bytes(this.u32()));
  }
  /** A copy, so typed views over it are aligned and outlive the message. */
  bytes(n: number): Uint8Array {
    this.need(n);
    // Not data.slice: on a Buffer (what NATS hands out) that is a view into a shared pool.
    const out = new Uint8Array(n);
    out.set(this.data.subarray(this.at, this.at + n));
    this.at += n;
    return out;
  }
  end(): void {
    if (this.at !== this.data.length) throw new InternalError(`${this.what} has ${this.data.length - this.at} trailing bytes`);
  }
}
