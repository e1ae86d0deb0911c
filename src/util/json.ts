/** The deepest nesting accepted in a JSON body: far more than any real event needs, far less than overflows a stack. */
export const MAX_JSON_DEPTH = 64;

/**
 * Where a parsed JSON value nests deeper than `max` objects and arrays (a dotted path, "" for the value itself), or
 * null when it does not. Iterative, so a hostile value cannot overflow the stack here; serializing such a value later
 * (JSON.stringify is recursive) would throw a RangeError instead of a 400.
 */
export function tooDeep(value: unknown, max = MAX_JSON_DEPTH): string | null {
  const stack: [unknown, number, string][] = [[value, 0, ""]];
  while (stack.length) {
    const [v, depth, path] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth >= max) return path;
    const entries = Array.isArray(v) ? v.map((c, i) => [String(i), c] as const) : Object.entries(v as Record<string, unknown>);
    for (const [k, c] of entries) if (c !== null && typeof c === "object") stack.push([c, depth + 1, path ? `${path}.${k}` : k]);
  }
  return null;
}
