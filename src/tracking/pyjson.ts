/**
 * Python's `json.dumps(value)` with its defaults, byte for byte: separators ", " and ": ", ensure_ascii (every
 * character outside U+0020–U+007E except the short escapes becomes \uXXXX with lower-case hex; characters beyond the BMP
 * become surrogate pairs), keys in insertion order, true/false/null, NaN/Infinity/-Infinity as Python writes them.
 *
 * Numbers: JavaScript has one number type, so a number that is an integer prints as an integer (1, not 1.0 — a Python
 * float 1.0 that went through JSON.parse comes back as "1"), others print as Python's float repr (shortest round-trip
 * digits; exponent form below 1e-4: 1e-05, 1.5e-07). bigint prints as an integer. Objects are written in property
 * order, which for JavaScript objects puts integer-like keys ("1", "42") first; pass a Map to keep any order.
 * `undefined` object members are skipped and `undefined` array items become null (as JSON.stringify does); `toJSON()`
 * is honoured (Dates become ISO strings); functions, symbols and cycles throw a TrackingError ("not_serialisable").
 */
import { TrackingError } from "./errors.js";

const SHORT: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

/** A JSON string literal as Python's json.dumps (ensure_ascii=True) writes it. */
export function pyJsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    out += SHORT[s[i]] ?? "\\u" + c.toString(16).padStart(4, "0");
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

/** A number as Python writes an int (integral values) or a float (repr) in JSON. */
export function pyJsonNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (Number.isInteger(n)) return Math.abs(n) < 1e21 ? String(n === 0 ? 0 : n) : BigInt(n).toString();
  // Shortest round-trip digits, then Python's float_repr layout: fixed for 1e-4 <= |n| < 1e16, exponent otherwise.
  const [mant, expStr] = n.toExponential().split("e");
  const exp = Number(expStr);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let body: string;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) body = "0." + "0".repeat(-exp - 1) + digits;
    else if (digits.length > exp + 1) body = digits.slice(0, exp + 1) + "." + digits.slice(exp + 1);
    else body = digits + "0".repeat(exp + 1 - digits.length) + ".0";
  } else {
    const m = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
    body = m + "e" + (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
  }
  return (neg ? "-" : "") + body;
}

/** Python `json.dumps(value)` (default arguments). */
export function pyJsonDumps(value: unknown): string {
  const out = write(value, new Set());
  if (out === undefined) throw new TrackingError("not_serialisable", `value of type ${typeof value} is not JSON serialisable`);
  return out;
}

function write(v: unknown, stack: Set<object>): string | undefined {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      return pyJsonString(v);
    case "number":
      return pyJsonNumber(v);
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return v.toString();
    case "undefined":
      return undefined;
    case "function":
    case "symbol":
      throw new TrackingError("not_serialisable", `a ${typeof v} is not JSON serialisable`);
  }
  const o = v as object;
  if (typeof (o as { toJSON?: unknown }).toJSON === "function") return write((o as { toJSON(): unknown }).toJSON(), stack);
  if (stack.has(o)) throw new TrackingError("not_serialisable", "circular reference detected");
  stack.add(o);
  try {
    if (Array.isArray(o)) return "[" + o.map((x) => write(x, stack) ?? "null").join(", ") + "]";
    const entries: Iterable<[unknown, unknown]> = o instanceof Map ? o.entries() : Object.entries(o);
    const parts: string[] = [];
    for (const [k, x] of entries) {
      const s = write(x, stack);
      if (s === undefined) continue;
      parts.push(pyJsonString(keyString(k)) + ": " + s);
    }
    return "{" + parts.join(", ") + "}";
  } finally {
    stack.delete(o);
  }
}

// Python's json.dumps turns non-string dict keys into strings: True -> "true", None -> "null", 1.5 -> "1.5".
function keyString(k: unknown): string {
  if (typeof k === "string") return k;
  if (typeof k === "number") return pyJsonNumber(k);
  if (typeof k === "boolean") return k ? "true" : "false";
  if (k === null) return "null";
  if (typeof k === "bigint") return k.toString();
  throw new TrackingError("not_serialisable", `a key of type ${typeof k} is not JSON serialisable`);
}
