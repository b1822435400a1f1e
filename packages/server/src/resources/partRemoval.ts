import { cdnObjectKey } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { PartStorage } from '../stores/partStorage.js';
import type { ResourceVersion } from '../stores/records.js';
import type { Store, Tables } from '../stores/store.js';
import type { EnvelopeCache } from './envelopeCache.js';
import type { CdnObjects } from './service.js';

/** What removing versions' parts needs. */
export interface PartRemovalDeps {
  store: Store;
  partStorage: PartStorage;
  cdnObjects: CdnObjects | null;
  cache: EnvelopeCache | null;
}

/**
 * The CDN keys of `removed` that no version in `kept` names (two versions of one resource may
 * share an object: it stays while one of them does).
 */
export function orphanedCdnKeys(
  removed: readonly ResourceVersion[],
  kept: readonly ResourceVersion[],
): string[] {
  const keep = new Set(kept.flatMap((v) => (v.cdnKey === null ? [] : [v.cdnKey])));
  const keys = new Set(removed.flatMap((v) => (v.cdnKey === null ? [] : [v.cdnKey])));
  return [...keys].filter((k) => !keep.has(k));
}

/**
 * Inside the transaction that deletes the versions' rows: marks their CDN objects due for
 * removal, so the sweeper finishes what a crash or a failure of removeParts leaves.
 */
export async function scheduleCdnRemovals(
  t: Tables,
  cdnObjects: CdnObjects | null,
  cdnKeys: readonly string[],
): Promise<void> {
  if (cdnObjects === null) return;
  const now = new Date().toISOString();
  for (const key of cdnKeys) await t.removals.add('cdnObject', key, now);
}

/**
 * After the rows are gone: removes the versions' stored parts and the given CDN objects, and
 * drops their small parts from the envelope cache. Nothing names them any more, so a failure only
 * leaves an unreferenced object (logged, swept later). Returns how many were left.
 */
export async function removeParts(
  deps: PartRemovalDeps,
  versions: readonly ResourceVersion[],
  cdnKeys: readonly string[],
  log: FastifyBaseLogger,
): Promise<{ left: number }> {
  const { partStorage, cdnObjects, cache } = deps;
  const parts = versions.flatMap((v) =>
    v.bigBlobId === null ? [v.smallBlobId] : [v.smallBlobId, v.bigBlobId],
  );
  for (const v of versions) cache?.forgetSmall(v.smallBlobId);
  const left: string[] = [];
  for (const id of parts) {
    await partStorage.remove(id).catch((e: unknown) => {
      left.push(id);
      log.warn({ event: 'resource.partLeft', id, err: e }, 'stored part not removed');
    });
  }
  if (cdnObjects === null) return { left: left.length };
  for (const key of cdnKeys) {
    const objectKey = cdnObjectKey(cdnObjects.prefix, key);
    const gone = await cdnObjects.bucket.remove(objectKey).then(
      () => true,
      (e: unknown) => {
        left.push(objectKey);
        log.warn(
          { event: 'resource.cdnObjectLeft', key: objectKey, err: e },
          'CDN object not removed; the sweeper retries',
        );
        return false;
      },
    );
    // No longer due (never fails the delete itself).
    if (gone) {
      await deps.store.removals.done('cdnObject', key).catch((e: unknown) => {
        log.warn({ event: 'resource.removalNotRecorded', err: e }, 'CDN removal not recorded');
      });
    }
  }
  return { left: left.length };
}
