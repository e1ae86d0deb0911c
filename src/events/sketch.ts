/**
 * Unique-visitor sketches: an exact set of 32-bit visitor hashes while small, a HyperLogLog (p = 12, 4096 one-byte
 * registers, about 1.6 % standard error) once it grows. Merging is a union / register max, so it is idempotent and
 * order-free: sketches of any hours can be combined at read time, and re-applying one is harmless.
 */
const P = 12;
const M = 1 << P;
const SPARSE_MAX = 256;
const ALPHA = 0.7213 / (1 + 1.079 / M);

/** 32-bit FNV-1a followed by murmur3's finaliser, so every bit is well mixed. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class VisitorSketch {
  private sparse: Set<number> | null = new Set();
  private dense: Uint8Array | null = null;

  add(h: number): void {
    if (this.sparse) {
      this.sparse.add(h);
      if (this.sparse.size > SPARSE_MAX) this.densify();
    } else this.addDense(h);
  }

  private addDense(h: number) {
    const idx = h >>> (32 - P);
    const rest = (h << P) >>> 0;
    const rank = rest === 0 ? 32 - P + 1 : Math.clz32(rest) + 1;
    if (rank > this.dense![idx]!) this.dense![idx] = rank;
  }

  private densify() {
    this.dense = new Uint8Array(M);
    for (const h of this.sparse!) this.addDense(h);
    this.sparse = null;
  }

  merge(o: VisitorSketch): void {
    if (o.sparse) {
      for (const h of o.sparse) this.add(h);
      return;
    }
    if (this.sparse) this.densify();
    const a = this.dense!;
    const b = o.dense!;
    for (let i = 0; i < M; i++) if (b[i]! > a[i]!) a[i] = b[i]!;
  }

  count(): number {
    if (this.sparse) return this.sparse.size;
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < M; i++) {
      const r = this.dense![i]!;
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    const e = (ALPHA * M * M) / sum;
    if (e <= 2.5 * M && zeros > 0) return Math.round(M * Math.log(M / zeros));
    return Math.round(e);
  }

  /** Format: 1 + uint32 hashes (sparse) or 2 + 4096 registers (dense). */
  toBuffer(): Buffer {
    if (this.sparse) {
      const b = Buffer.alloc(1 + 4 * this.sparse.size);
      b[0] = 1;
      let o = 1;
      for (const h of this.sparse) o = b.writeUInt32LE(h, o);
      return b;
    }
    return Buffer.concat([Buffer.from([2]), this.dense!]);
  }

  static from(b: Uint8Array): VisitorSketch {
    const s = new VisitorSketch();
    if (b[0] === 1) {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let o = 1; o + 4 <= b.length; o += 4) s.sparse!.add(view.getUint32(o, true));
    } else if (b[0] === 2 && b.length === M + 1) {
      s.sparse = null;
      s.dense = Uint8Array.from(b.subarray(1));
    } else throw new Error("not a visitor sketch");
    return s;
  }
}
