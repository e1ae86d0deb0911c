// The compact event table the funnel engine and the event reports read: one row per event in typed-array columns,
// grouped by visitor and, within a visitor, in time order (ts, then arrival order). Strings (event names, visitor ids,
// sources) and event data (by its JSON text) are interned, so 10 million events take about 30 bytes each.
//
// A table is also appendable: rows pushed after the last sort sit in a tail that readers do not see until `sort()`
// groups everything again, in place (a stable counting sort by visitor, so the grouped prefix stays in order and only
// visitors with new rows are checked for time order).

export interface RawEvent {
  visitor: string;
  ts: number;
  name: string;
  data?: Record<string, unknown> | null;
  source?: string;
  id?: number;
  link_id?: number;
}

const NO_DATA = 0;

export class EventTable {
  /** rows readers may use: grouped by visitor, time-ordered inside each */
  length = 0;
  /** rows stored (length plus the unsorted tail) */
  stored = 0;
  visitor: Uint32Array;
  ts: Float64Array;
  /** index into names */
  name: Uint32Array;
  /** index into dataValues (0: no data) */
  dataIdx: Uint32Array;
  /** index into sources */
  source: Uint8Array;
  /** the event's id in the log (0 when unknown) */
  id: Float64Array;
  /** the link a click was on (0: none) */
  link: Uint32Array;
  /** events of visitor v are [offsets[v], offsets[v + 1]) of the sorted rows */
  offsets = new Uint32Array(1);

  readonly names: string[] = [];
  readonly nameIndex = new Map<string, number>();
  readonly visitorIds: string[] = [];
  readonly visitorIndex = new Map<string, number>();
  readonly sources: string[] = [];
  private readonly sourceIndex = new Map<string, number>();
  private readonly dataTexts: (string | null)[] = [null];
  private readonly dataParsed: (Record<string, unknown> | null | undefined)[] = [null];
  private readonly dataIndex = new Map<string, number>();

  constructor(capacity = 1024) {
    this.visitor = new Uint32Array(capacity);
    this.ts = new Float64Array(capacity);
    this.name = new Uint32Array(capacity);
    this.dataIdx = new Uint32Array(capacity);
    this.source = new Uint8Array(capacity);
    this.id = new Float64Array(capacity);
    this.link = new Uint32Array(capacity);
  }

  /** The data object of row i (parsed once per distinct JSON text), or null. */
  data(i: number): Record<string, unknown> | null {
    const d = this.dataIdx[i];
    if (d === NO_DATA) return null;
    let v = this.dataParsed[d];
    if (v === undefined) {
      try {
        const parsed: unknown = JSON.parse(this.dataTexts[d]!);
        v = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
      } catch {
        v = null;
      }
      this.dataParsed[d] = v;
    }
    return v;
  }

  visitorOf(id: string): number {
    let v = this.visitorIndex.get(id);
    if (v === undefined) {
      v = this.visitorIds.length;
      this.visitorIndex.set(id, v);
      this.visitorIds.push(id);
    }
    return v;
  }

  nameOf(name: string): number {
    let n = this.nameIndex.get(name);
    if (n === undefined) {
      n = this.names.length;
      this.nameIndex.set(name, n);
      this.names.push(name);
    }
    return n;
  }

  private sourceOf(source: string): number {
    let s = this.sourceIndex.get(source);
    if (s === undefined) {
      s = this.sources.length;
      if (s > 255)
        s = 255; // more than 255 distinct sources: the rest share the last slot
      else {
        this.sourceIndex.set(source, s);
        this.sources.push(source);
      }
    }
    return s;
  }

  private dataOf(text: string | null): number {
    if (text === null || text === "null") return NO_DATA;
    let d = this.dataIndex.get(text);
    if (d === undefined) {
      d = this.dataTexts.length;
      this.dataIndex.set(text, d);
      this.dataTexts.push(text);
      this.dataParsed.push(undefined);
    }
    return d;
  }

  /** Appends one row to the tail (visible after `sorted()`); data is JSON text or an object. */
  push(visitor: string | number, ts: number, name: string, data: string | Record<string, unknown> | null, source = "", id = 0, link = 0): void {
    // grow by a quarter once large: the table is most of a big project's memory
    if (this.stored === this.visitor.length) this.grow(this.stored < 1 << 20 ? this.stored * 2 || 1024 : Math.ceil(this.stored * 1.25));
    const i = this.stored++;
    this.visitor[i] = typeof visitor === "number" ? visitor : this.visitorOf(visitor);
    this.ts[i] = ts;
    this.name[i] = this.nameOf(name);
    this.dataIdx[i] = this.dataOf(data === null || typeof data === "string" ? data : JSON.stringify(data));
    this.source[i] = this.sourceOf(source);
    this.id[i] = id;
    this.link[i] = link;
  }

  /** Makes room for `more` rows at once (a load that knows its size). */
  reserve(more: number): void {
    if (this.stored + more > this.visitor.length) this.grow(this.stored + more);
  }

  private grow(cap: number): void {
    const grow = <T extends Uint32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a.subarray(0, this.stored));
      return b;
    };
    this.visitor = grow(this.visitor, (n) => new Uint32Array(n));
    this.ts = grow(this.ts, (n) => new Float64Array(n));
    this.name = grow(this.name, (n) => new Uint32Array(n));
    this.dataIdx = grow(this.dataIdx, (n) => new Uint32Array(n));
    this.source = grow(this.source, (n) => new Uint8Array(n));
    this.id = grow(this.id, (n) => new Float64Array(n));
    this.link = grow(this.link, (n) => new Uint32Array(n));
  }

  /** True when rows were pushed since the last sort. */
  get dirty(): boolean {
    return this.stored !== this.length;
  }

  /**
   * Groups every stored row by visitor (after `remap`, which maps a visitor index to the index its rows now belong to,
   * e.g. an alias to the visitor it was merged into), time-ordered within each visitor, and makes them all readable.
   * In place: a stable counting sort gives each row its new position, then the columns are permuted by following the
   * permutation's cycles, so a sort needs 5 bytes a row on top of the table (not a second copy of it).
   */
  sort(remap?: Uint32Array): void {
    const n = this.stored;
    const nv = this.visitorIds.length;
    const vis = this.visitor;
    const ts = this.ts;
    if (remap) for (let i = 0; i < n; i++) vis[i] = remap[vis[i]];
    const offsets = new Uint32Array(nv + 1);
    for (let i = 0; i < n; i++) offsets[vis[i] + 1]++;
    for (let v = 0; v < nv; v++) offsets[v + 1] += offsets[v];
    // perm[new position] = old position
    const perm = new Uint32Array(n);
    const fill = offsets.slice(0, nv);
    for (let i = 0; i < n; i++) perm[fill[vis[i]]++] = i;
    for (let v = 0; v < nv; v++) {
      const a = offsets[v];
      const b = offsets[v + 1];
      let inOrder = true;
      for (let i = a + 1; i < b && inOrder; i++) if (ts[perm[i]] < ts[perm[i - 1]]) inOrder = false;
      if (!inOrder) {
        const sub = Array.from(perm.subarray(a, b));
        sub.sort((x, y) => ts[x] - ts[y] || x - y);
        perm.set(sub, a);
      }
    }
    const { name, dataIdx, source, id, link } = this;
    const done = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (done[i] || perm[i] === i) continue;
      const v0 = vis[i];
      const t0 = ts[i];
      const n0 = name[i];
      const d0 = dataIdx[i];
      const s0 = source[i];
      const id0 = id[i];
      const l0 = link[i];
      let j = i;
      for (;;) {
        done[j] = 1;
        const k = perm[j];
        if (k === i) {
          vis[j] = v0;
          ts[j] = t0;
          name[j] = n0;
          dataIdx[j] = d0;
          source[j] = s0;
          id[j] = id0;
          link[j] = l0;
          break;
        }
        vis[j] = vis[k];
        ts[j] = ts[k];
        name[j] = name[k];
        dataIdx[j] = dataIdx[k];
        source[j] = source[k];
        id[j] = id[k];
        link[j] = link[k];
        j = k;
      }
    }
    this.offsets = offsets;
    this.length = n;
  }

  /** Distinct data values (index 0 is "no data"). */
  get dataCount(): number {
    return this.dataTexts.length;
  }

  /** Visitors known to the table (including those whose rows were merged into another). */
  get visitorCount(): number {
    return this.visitorIds.length;
  }

  /** Bytes held by the columns, for /metrics and the benchmark. */
  get bytes(): number {
    return this.visitor.length * (4 + 8 + 4 + 4 + 1 + 8 + 4) + this.offsets.byteLength;
  }
}

/** A sorted table of the given events (tests and ad-hoc use). */
export function buildEventTable(events: Iterable<RawEvent>): EventTable {
  const t = new EventTable();
  for (const e of events) t.push(e.visitor, e.ts, e.name, e.data ?? null, e.source ?? "", e.id ?? 0, e.link_id ?? 0);
  t.sort();
  return t;
}
