/**
 * Clicks per link id, kept in pages of typed arrays (a page for each 4,096 consecutive ids that hold clicks): an
 * addition is a small map's lookup by page number and a slot's update, where a Map by link id had to find the id among
 * tens of thousands (twice: a get and a set) on every click. Link ids are the store's row ids, so the links clicked
 * share few pages; a page whose counts are all back to zero goes.
 */
const PAGE_SIZE = 4096;
const PAGE_MASK = PAGE_SIZE - 1;

interface Page {
  counts: Int32Array;
  /** its slots that are not zero */
  live: number;
}

export class ClickSums {
  private readonly pages = new Map<number, Page>();

  get(linkId: number): number {
    return this.pages.get(Math.floor(linkId / PAGE_SIZE))?.counts[linkId & PAGE_MASK] ?? 0;
  }

  /** Adds one click for each id in `ids` (`sign` -1: takes them away). */
  addAll(ids: readonly number[], sign: 1 | -1): void {
    let pageNo = -1;
    let page: Page | undefined;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const no = Math.floor(id / PAGE_SIZE);
      if (no !== pageNo) {
        pageNo = no;
        page = this.pages.get(no);
        if (page === undefined) this.pages.set(no, (page = { counts: new Int32Array(PAGE_SIZE), live: 0 }));
      }
      const slot = id & PAGE_MASK;
      const before = page!.counts[slot]!;
      const after = before + sign;
      page!.counts[slot] = after;
      if (before === 0) page!.live++;
      else if (after === 0 && --page!.live === 0) {
        this.pages.delete(no);
        pageNo = -1;
      }
    }
  }

  /** pages held (for tests) */
  get pageCount(): number {
    return this.pages.size;
  }
}

/** How many times `linkId` is in `ids`. */
export function countOf(ids: readonly number[] | null, linkId: number): number {
  if (ids === null) return 0;
  let n = 0;
  for (let i = 0; i < ids.length; i++) if (ids[i] === linkId) n++;
  return n;
}
