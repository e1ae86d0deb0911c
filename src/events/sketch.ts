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
  /**
   * Sparse: the hashes added, duplicates and all, in a typed array (`n` used) made unique (sorted) only when it is full
   * and when it is read. Under redirects each click adds its visitor to the sketches of its link, project and domain,
   * mostly a hash not seen before: a Set's add (hashing, a table grown by rehashing) took 10 % of the writer thread.
   */
  private sparse: Uint32Array | null = new Uint32Array(8);
  private n = 0;
  private dense: Uint8Array | null = null;

  add(h: number): void {
    if (this.sparse) {
      if (this.n === this.sparse.length) this.makeRoom();
      if (this.sparse) this.sparse[this.n++] = h;
      else this.addDense(h);
    } else this.addDense(h);
  }

  /** A full sparse array: its duplicates dropped; past SPARSE_MAX distinct hashes, dense; else grown if still half full. */
  private makeRoom() {
    this.unique();
    if (!this.sparse) return;
    if (this.n * 2 > this.sparse.length) {
      const grown = new Uint32Array(this.sparse.length * 2);
      grown.set(this.sparse.subarray(0, this.n));
      this.sparse = grown;
    }
  }

  /** The sparse hashes sorted and unique (dense past SPARSE_MAX of them). */
  private unique() {
    const a = this.sparse!;
    if (this.n > 1) {
      a.subarray(0, this.n).sort();
      let w = 1;
      for (let r = 1; r < this.n; r++) if (a[r] !== a[w - 1]) a[w++] = a[r]!;
      this.n = w;
    }
    if (this.n > SPARSE_MAX) this.densify();
  }

  private addDense(h: number) {
    const idx = h >>> (32 - P);
    const rest = (h << P) >>> 0;
    const rank = rest === 0 ? 32 - P + 1 : Math.clz32(rest) + 1;
    if (rank > this.dense![idx]!) this.dense![idx] = rank;
  }

  private densify() {
    this.dense = new Uint8Array(M);
    const a = this.sparse!;
    for (let i = 0; i < this.n; i++) this.addDense(a[i]!);
    this.sparse = null;
    this.n = 0;
  }

  merge(o: VisitorSketch): void {
    if (o.sparse) {
      const b = o.sparse;
      for (let i = 0; i < o.n; i++) this.add(b[i]!);
      return;
    }
    if (this.sparse) this.densify();
    const a = this.dense!;
    const b = o.dense!;
    for (let i = 0; i < M; i++) if (b[i]! > a[i]!) a[i] = b[i]!;
  }

  count(): number {
    if (this.sparse) this.unique();
    if (this.sparse) return this.n;
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

  /** Format: 1 + uint32 hashes, unique, ascending (sparse) or 2 + 4096 registers (dense). */
  toBuffer(): Buffer {
    if (this.sparse) this.unique();
    if (this.sparse) {
      const b = Buffer.alloc(1 + 4 * this.n);
      b[0] = 1;
      let o = 1;
      for (let i = 0; i < this.n; i++) o = b.writeUInt32LE(this.sparse[i]!, o);
      return b;
    }
    return Buffer.concat([Buffer.from([2]), this.dense!]);
  }

  static from(b: Uint8Array): VisitorSketch {
    const s = new VisitorSketch();
    if (b[0] === 1) {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const n = (b.length - 1) >>> 2;
      s.sparse = new Uint32Array(Math.max(8, n));
      for (let i = 0, o = 1; i < n; i++, o += 4) s.sparse[i] = view.getUint32(o, true);
      s.n = n;
    } else if (b[0] === 2 && b.length === M + 1) {
      s.sparse = null;
      s.dense = Uint8Array.from(b.subarray(1));
    } else throw new Error("not a visitor sketch");
    return s;
  }
}
