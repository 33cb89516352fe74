/**
 * "Did you mean …?" for a mistyped option or config key: the closest known spelling, by optimal string
 * alignment distance (Levenshtein plus adjacent transpositions, so `prot` is one edit from `port`).
 *
 * @module
 */

/**
 * The candidate closest to `text`, if one is within `maxDistance` edits (by default a third of the
 * length of `text`, at least 1); the first of equally close ones.
 *
 * @example
 * ```ts
 * import { closestSpelling } from "./_spelling.ts";
 * console.assert(closestSpelling("prot", ["host", "port"]) === "port");
 * console.assert(closestSpelling("zzz", ["host", "port"]) === undefined);
 * ```
 */
export function closestSpelling(
  text: string,
  candidates: Iterable<string>,
  maxDistance = Math.max(1, Math.floor(text.length / 3)),
): string | undefined {
  if (text === "") return undefined;
  let best: { spelling: string; distance: number } | undefined;
  for (const spelling of candidates) {
    const distance = editDistance(text, spelling);
    if (!best || distance < best.distance) best = { spelling, distance };
  }
  return best && best.distance <= maxDistance ? best.spelling : undefined;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (`prot` → `port`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
