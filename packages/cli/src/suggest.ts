/**
 * The candidate a mistyped word most likely meant: the closest within a small edit distance
 * (one edit for short words, one per three characters for longer ones, a swap of neighbours
 * counting as one), else the only candidate it is a prefix of. Undefined when nothing is close.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  // A flag's leading dashes are not part of what was mistyped.
  const limit = Math.max(1, Math.floor(word.replace(/^-+/, '').length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best !== undefined) return best;
  const extending = candidates.filter((c) => word.length > 1 && c.startsWith(word));
  return extending.length === 1 ? extending[0] : undefined;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) rows.push([i, ...Array<number>(b.length).fill(0)]);
  const at = (i: number, j: number) => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let j = 0; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, at(i - 2, j - 2) + 1);
      }
      row[j] = d;
    }
  }
  return at(a.length, b.length);
}

/** `; did you mean 'pull'?` when something is close, else ` (see 'sluice --help')`. */
export function hint(word: string, candidates: readonly string[], helpCommand: string): string {
  const match = closest(word, candidates);
  return match === undefined ? ` (see '${helpCommand}')` : `; did you mean '${match}'?`;
}
