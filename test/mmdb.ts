/**
 * Writes a tiny MaxMind DB (format v2) for tests: IPv4 networks → {country: {iso_code}}. Real GeoIP databases cannot
 * be downloaded here, so the tests build one following the published MMDB specification.
 */
import { writeFileSync } from "node:fs";

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  if (b.length >= 29) throw new Error("short strings only");
  return Buffer.concat([Buffer.from([(2 << 5) | b.length]), b]);
}
function map(entries: [string, Buffer][]): Buffer {
  return Buffer.concat([Buffer.from([(7 << 5) | entries.length]), ...entries.flatMap(([k, v]) => [str(k), v])]);
}
function uint(type: 5 | 6, n: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUIntBE(n, 0, bytes);
  return Buffer.concat([Buffer.from([(type << 5) | bytes]), b]);
}
function uint64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return Buffer.concat([Buffer.from([8, 9 - 7]), b]);
}
function array(items: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([items.length, 11 - 7]), ...items]);
}

export function writeCountryDb(file: string, networks: [string, string][]): void {
  const data: Buffer[] = [];
  const offsets: number[] = [];
  let off = 0;
  for (const [, iso] of networks) {
    const rec = map([["country", map([["iso_code", str(iso)]])]]);
    offsets.push(off);
    data.push(rec);
    off += rec.length;
  }
  // binary trie over 32 bits; node = [left, right]; -1 = empty, {leaf: i} = data i
  type Ref = number | { leaf: number } | null;
  const nodes: [Ref, Ref][] = [[null, null]];
  networks.forEach(([cidr], i) => {
    const [ip, bitsRaw] = cidr.split("/");
    const bits = Number(bitsRaw);
    const n = ip!.split(".").reduce((a, o) => a * 256 + Number(o), 0);
    let node = 0;
    for (let d = 0; d < bits; d++) {
      const bit = Math.floor(n / 2 ** (31 - d)) & 1;
      if (d === bits - 1) nodes[node]![bit] = { leaf: i };
      else {
        let next = nodes[node]![bit];
        if (typeof next !== "number") {
          nodes.push([null, null]);
          next = nodes.length - 1;
          nodes[node]![bit] = next;
        }
        node = next;
      }
    }
  });
  const count = nodes.length;
  const rec = (r: Ref) => (r === null ? count : typeof r === "number" ? r : count + 16 + offsets[r.leaf]!);
  const tree = Buffer.alloc(count * 6);
  nodes.forEach(([l, r], i) => {
    tree.writeUIntBE(rec(l), i * 6, 3);
    tree.writeUIntBE(rec(r), i * 6 + 3, 3);
  });
  const meta = map([
    ["node_count", uint(6, count, 4)],
    ["record_size", uint(5, 24, 2)],
    ["ip_version", uint(5, 4, 2)],
    ["database_type", str("Test-Country")],
    ["languages", array([str("en")])],
    ["binary_format_major_version", uint(5, 2, 2)],
    ["binary_format_minor_version", uint(5, 0, 2)],
    ["build_epoch", uint64(1_700_000_000)],
    ["description", map([["en", str("clicktrail test db")]])],
  ]);
  writeFileSync(file, Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from("\xab\xcd\xefMaxMind.com", "latin1"), meta]));
}
