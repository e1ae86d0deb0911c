import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import path from "node:path";
import { Journal, readJournal, SEGMENT_BYTES } from "../src/events/journal.js";
import { tmpDir } from "./helpers.js";

test("event journal: records read back in order; a record cut short at the end (a kill mid-write) is left out", () => {
  const dir = path.join(tmpDir(), "j");
  try {
    const j = new Journal(dir, false);
    j.reset();
    for (let seq = 1; seq <= 5; seq++) j.append(seq, JSON.stringify({ seq, text: "é".repeat(seq) }));
    j.close();
    assert.deepEqual(
      readJournal(dir).map((r) => [r.seq, r.payload]),
      [1, 2, 3, 4, 5].map((seq) => [seq, { seq, text: "é".repeat(seq) }]),
    );
    const [file] = readdirSync(dir);
    const full = path.join(dir, file!);
    // the last record loses its last bytes, then a header without its payload is left behind
    truncateSync(full, statSync(full).size - 3);
    assert.deepEqual(
      readJournal(dir).map((r) => r.seq),
      [1, 2, 3, 4],
    );
    appendFileSync(full, Buffer.from([200, 0, 0, 0, 1, 2]));
    assert.deepEqual(
      readJournal(dir).map((r) => r.seq),
      [1, 2, 3, 4],
    );
    // a journal started over holds nothing
    j.reset();
    assert.deepEqual(readJournal(dir), []);
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test("event journal: full segments are closed, and deleted once everything in them is committed", () => {
  const dir = path.join(tmpDir(), "j");
  try {
    const j = new Journal(dir, false);
    j.reset();
    const big = "x".repeat(1024 * 1024);
    const perSegment = Math.ceil(SEGMENT_BYTES / big.length);
    const n = perSegment * 3;
    for (let seq = 1; seq <= n; seq++) j.append(seq, JSON.stringify(big));
    assert.equal(readdirSync(dir).length, 3, readdirSync(dir).join(", "));
    assert.equal(readJournal(dir).length, n);
    // committed up to the middle of the second segment: only the first goes
    j.release(perSegment + 1);
    assert.equal(readdirSync(dir).length, 2);
    assert.equal(readJournal(dir)[0]!.seq, perSegment + 1);
    // the segment being written stays until it is closed
    j.release(n);
    assert.equal(readdirSync(dir).length, 1);
    j.append(n + 1, "1");
    assert.deepEqual(
      readJournal(dir)
        .map((r) => r.seq)
        .slice(-2),
      [n, n + 1],
    );
    j.close();
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});
