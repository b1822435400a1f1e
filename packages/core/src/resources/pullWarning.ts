import type { CacheProblem } from '../cache/cacheAvailability.js';

/** Something a pull worked around and went on: the caller may want to tell its user. */
export interface PullWarning {
  /** `cache-unusable`: the pull went on without its cache (`cache` says why). */
  kind: 'cache-unusable';
  /** One line for a person. */
  message: string;
  cache: CacheProblem;
}

/**
 * The `onWarning` of a pull, called at most once per kind; without one, Node's
 * `process.emitWarning` (code `SLUICE_CACHE_UNUSABLE`), so a warning is never silent.
 */
export function warnOnce(
  onWarning: ((w: PullWarning) => void) | undefined,
): (w: PullWarning) => void {
  const seen = new Set<PullWarning['kind']>();
  return (w) => {
    if (seen.has(w.kind)) return;
    seen.add(w.kind);
    if (onWarning !== undefined) onWarning(w);
    else process.emitWarning(w.message, { code: 'SLUICE_CACHE_UNUSABLE' });
  };
}

/** The warning of a pull that goes on without its cache. */
export function cacheUnusable(cache: CacheProblem): PullWarning {
  return { kind: 'cache-unusable', message: `${cache.message}; pulling without it`, cache };
}
