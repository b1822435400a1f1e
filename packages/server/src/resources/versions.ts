import {
  type ListedVersion,
  type ReleaseResponse,
  type RemoveVersionResponse,
  SluiceError,
  type VersionsResponse,
} from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { ResourceRecord, ResourceVersion } from '../stores/records.js';
import type { Tables } from '../stores/store.js';
import {
  orphanedCdnKeys,
  type PartRemovalDeps,
  removeParts,
  scheduleCdnRemovals,
} from './partRemoval.js';

/** The newest stored version, or ERR_NOT_FOUND. */
export function latest(resource: ResourceRecord): ResourceVersion {
  const v = resource.versions.at(-1);
  if (v === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
  return v;
}

/** The released version: the pointer's, or the latest for records from before it existed. */
export function currentOf(resource: ResourceRecord): ResourceVersion {
  const pointed = resource.versions.find((v) => v.version === resource.currentVersion);
  return pointed ?? latest(resource);
}

/** Version `wanted` of `resource` (the released one when undefined), or ERR_NOT_FOUND. */
export function versionOf(resource: ResourceRecord, wanted: number | undefined): ResourceVersion {
  if (wanted === undefined) return currentOf(resource);
  const found = resource.versions.find((v) => v.version === wanted);
  if (found === undefined) {
    throw new SluiceError(
      'ERR_NOT_FOUND',
      `${resource.folder}/${resource.name} has no version ${wanted}`,
    );
  }
  return found;
}

async function findIn(t: Tables, folder: string, name: string): Promise<ResourceRecord> {
  const r = await t.resources.get(folder, name);
  if (r === undefined || r.versions.length === 0) {
    throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
  }
  return r;
}

/** Every version of `folder/name`, oldest first, with the uploader's email and which is current. */
export async function listVersions(
  t: Tables,
  folder: string,
  name: string,
): Promise<VersionsResponse> {
  const r = await findIn(t, folder, name);
  const current = currentOf(r).version;
  const emails = new Map<string, string | null>();
  for (const id of new Set(r.versions.map((v) => v.uploadedBy))) {
    emails.set(id, (await t.users.get(id))?.email ?? null);
  }
  const versions: ListedVersion[] = r.versions.map((v) => ({
    version: v.version,
    blobSize: v.manifest.blobSize,
    smallSize: v.manifest.smallSize,
    bigSize: v.manifest.bigSize,
    bigStored: v.bigBlobId !== null,
    createdAt: v.createdAt,
    uploadedBy: emails.get(v.uploadedBy) ?? null,
    current: v.version === current,
  }));
  return { folder, name, current, versions };
}

/** Points `folder/name` at `version` (which must be stored); rollback is releasing an older one. */
export async function release(
  t: Tables,
  folder: string,
  name: string,
  version: number,
): Promise<ReleaseResponse> {
  const r = await findIn(t, folder, name);
  const previous = currentOf(r).version;
  versionOf(r, version);
  await t.resources.setCurrent(r.id, version);
  return { folder, name, current: version, previous };
}

/**
 * Which version becomes current when `removed` (the current one) goes: the newest older one (a
 * deleted release falls back, like a rollback), else the newest remaining.
 */
function successor(kept: readonly ResourceVersion[], removed: number): number | null {
  const older = kept.filter((v) => v.version < removed).at(-1);
  return (older ?? kept.at(-1))?.version ?? null;
}

/**
 * Deletes version `version` of `folder/name` and then its parts. The released version is
 * refused (409) unless `force`: then the newest older version (else the newest) becomes
 * current. Removing the last version removes the resource.
 */
export async function removeVersion(
  deps: PartRemovalDeps,
  target: { folder: string; name: string; version: number; force: boolean },
  log: FastifyBaseLogger,
): Promise<RemoveVersionResponse & { left: number }> {
  const { folder, name, version, force } = target;
  const done = await deps.store.transaction(async (t) => {
    const r = await findIn(t, folder, name);
    const gone = versionOf(r, version);
    const kept = r.versions.filter((v) => v !== gone);
    const wasCurrent = currentOf(r) === gone;
    if (wasCurrent && !force) {
      throw new SluiceError(
        'ERR_CONFLICT',
        `version ${version} is the released version of ${folder}/${name}; release another ` +
          'first, or force it (the previous version becomes current)',
      );
    }
    const cdnKeys = orphanedCdnKeys([gone], kept);
    let current: number | null = currentOf(r).version;
    if (kept.length === 0) {
      await t.resources.remove(r.id);
      current = null;
    } else {
      await t.resources.removeVersion(r.id, version);
      if (wasCurrent) current = successor(kept, version);
      // Pin the pointer: with it unset the latest would be current, which may be what went.
      await t.resources.setCurrent(r.id, current);
    }
    await scheduleCdnRemovals(t, deps.cdnObjects, cdnKeys);
    return { gone, cdnKeys, current };
  });
  const { left } = await removeParts(deps, [done.gone], done.cdnKeys, log);
  return { folder, name, version, current: done.current, left };
}

/**
 * Retention, inside an upload's transaction: deletes the rows of the versions of `r` beyond the
 * newest `keep`, never the current one (`current`). Returns what the caller removes the parts of
 * once committed. `keep` 0 keeps everything.
 */
export async function retainNewest(
  t: Tables,
  deps: Pick<PartRemovalDeps, 'cdnObjects'>,
  r: ResourceRecord,
  keep: number,
): Promise<{ versions: ResourceVersion[]; cdnKeys: string[] }> {
  if (keep === 0 || r.versions.length <= keep) return { versions: [], cdnKeys: [] };
  const current = currentOf(r);
  const old = r.versions.slice(0, r.versions.length - keep).filter((v) => v !== current);
  const kept = r.versions.filter((v) => !old.includes(v));
  for (const v of old) await t.resources.removeVersion(r.id, v.version);
  const cdnKeys = orphanedCdnKeys(old, kept);
  await scheduleCdnRemovals(t, deps.cdnObjects, cdnKeys);
  return { versions: old, cdnKeys };
}

/** Logs what retention removed (one line per version), with the uploader whose push it followed. */
export function logRetained(
  log: FastifyBaseLogger,
  where: { folder: string; name: string; by: string },
  removed: readonly ResourceVersion[],
): void {
  for (const v of removed) {
    log.info(
      { event: 'resource.versionExpired', ...where, version: v.version },
      'version deleted by retention (keepVersions)',
    );
  }
}
