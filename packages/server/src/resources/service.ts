import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { S3Objects } from '@sluice/cdn';
import {
  deriveEnvelopeKey,
  type EnvelopeResource,
  envelopeAad,
  type ListedResource,
  type Manifest,
  type ReleaseResponse,
  type RemoveVersionResponse,
  type SealedEnvelope,
  SluiceError,
  sealEnvelope,
  type VersionsResponse,
} from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { bindDevice, type DeviceClaim } from '../auth/deviceBinding.js';
import type { BindingPolicy } from '../auth/driftPolicy.js';
import type { LoginLimiter } from '../auth/loginLimiter.js';
import type { TokenCaller } from '../auth/tokenPassword.js';
import { versionConflict } from '../errors.js';
import { chargePull } from '../limits/pullQuota.js';
import { PublisherKeyService } from '../publisherKeys/service.js';
import { dataKeyAad, unwrapDataKey, wrapDataKey } from '../stores/masterKey.js';
import type { PartStorage, PendingBlob } from '../stores/partStorage.js';
import type { ResourceRecord, ResourceVersion } from '../stores/records.js';
import type { Store, Tables } from '../stores/store.js';
import type { ByteRange } from './byteRange.js';
import type { EnvelopeCache } from './envelopeCache.js';
import { SMALL_PART_LIMIT } from './limits.js';
import { checkUploadManifest, type ManifestCheckDeps } from './manifestChecks.js';
import { orphanedCdnKeys, removeParts, scheduleCdnRemovals } from './partRemoval.js';
import type { StepTimer } from './stepTimer.js';
import { checkBigPart, checkCdnObject, checkDataKey, checkSmallPart } from './uploadChecks.js';
import { verifyEnvelopeRequest } from './verifyEnvelopeRequest.js';
import {
  currentOf,
  latest,
  listVersions,
  logRetained,
  release,
  removeVersion,
  retainNewest,
  versionOf,
} from './versions.js';

/** An S3 CDN's bucket (with the uploader keys) and key prefix, to check and remove `cdnKey`s. */
export interface CdnObjects {
  bucket: S3Objects;
  prefix: string | null;
}

export interface ResourceServiceDeps {
  store: Store;
  /** Small and big parts (files in the data directory, or an S3 bucket). */
  partStorage: PartStorage;
  /** Encrypts the data keys at rest (`master.key`). */
  masterKey: Buffer;
  /** Null unless the CDN is S3. */
  cdnObjects: CdnObjects | null;
  limiter: LoginLimiter;
  cache: EnvelopeCache | null;
  /** How far a device may drift from its binding (auth/driftPolicy.ts). */
  binding: BindingPolicy;
  /** Retention: versions kept per resource after an upload (0: all; see ServerOptions). */
  keepVersions: number;
}

/** An upload, its fields parsed: the parts are still temp blobs. */
export interface NewVersion {
  name: string;
  manifest: Manifest;
  dataKey: Buffer;
  cdnKey: string | null;
  small: PendingBlob;
  big: PendingBlob | undefined;
  /** Whether the new version becomes the released one (`release` field; default true). */
  release: boolean;
}

/** What a device asks an envelope for, its names and hardware hash checked. */
export interface EnvelopeAsk {
  folder: string;
  name: string;
  password: string;
  hardware: string;
  /** The device's factor digests, when its client sends them. */
  hardwareFactors?: DeviceClaim['factors'];
  /** The version asked for; undefined: the released one. */
  version: number | undefined;
}

/** Resources: versions by upload, envelopes for bound devices, listing and deletion. */
export class ResourceService {
  private readonly manifestChecks: ManifestCheckDeps;

  constructor(private readonly deps: ResourceServiceDeps) {
    this.manifestChecks = { store: deps.store, publisherKeys: new PublisherKeyService(deps.store) };
  }

  /** Refuses a manifest `uploaderId` may not upload to `folder` (see checkUploadManifest). */
  checkManifest(
    folder: string,
    name: string | undefined,
    manifest: Manifest,
    uploaderId: string,
  ): Promise<void> {
    return checkUploadManifest(this.manifestChecks, { folder, name, uploaderId }, manifest);
  }

  /** The resource, or ERR_NOT_FOUND. */
  async find(folder: string, name: string): Promise<ResourceRecord> {
    const resource = await this.deps.store.resources.get(folder, name);
    if (resource === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
    return resource;
  }

  async list(folder: string): Promise<ListedResource[]> {
    const rows = await this.deps.store.resources.listLatest(folder);
    return rows.map(({ resource: r, count, top }) => {
      const v = latest(r);
      return {
        name: r.name,
        version: v.version,
        versions: count,
        blobSize: v.manifest.blobSize,
        smallSize: v.manifest.smallSize,
        bigSize: v.manifest.bigSize,
        bigStored: v.bigBlobId !== null,
        createdAt: v.createdAt,
        current: r.currentVersion ?? v.version,
        nextVersion: top + 1,
      };
    });
  }

  /**
   * Checks the parts against the manifest (and a `cdnKey` against the CDN), commits them and adds
   * them as the next version; returns its number. A failure leaves no part committed.
   */
  async upload(
    folder: string,
    upload: NewVersion,
    uploadedBy: string,
    log: FastifyBaseLogger,
  ): Promise<number> {
    const { name, manifest, dataKey, cdnKey, small, big } = upload;
    await this.checkManifest(folder, name, manifest, uploadedBy);
    checkDataKey(manifest, dataKey);
    await checkSmallPart(small, manifest);
    if (big === undefined && cdnKey === null) {
      throw new SluiceError('ERR_BAD_REQUEST', 'send the big part, or the cdnKey that holds it');
    }
    if (big !== undefined) await checkBigPart(big, manifest);
    if (cdnKey !== null) await checkCdnObject(this.deps, folder, name, cdnKey, manifest);

    const { partStorage, masterKey } = this.deps;
    const committed: string[] = [];
    try {
      const smallBlobId = await partStorage.commit(small);
      committed.push(smallBlobId);
      const bigBlobId = big === undefined ? null : await partStorage.commit(big);
      if (bigBlobId !== null) committed.push(bigBlobId);
      const { number, expired } = await this.deps.store.transaction(async (t) => {
        const resourceId = await t.resources.ensure(folder, name, randomUUID());
        const number = (await t.resources.latestVersion(resourceId)) + 1;
        // Checked again here, atomically: another upload may have taken the number meanwhile.
        if (manifest.version === 2 && manifest.resource.version !== number) {
          throw versionConflict(manifest.resource.version, number - 1);
        }
        await t.resources.addVersion(resourceId, {
          version: number,
          manifest,
          smallBlobId,
          bigBlobId,
          cdnKey,
          wrappedDataKey: wrapDataKey(masterKey, dataKey, dataKeyAad(resourceId, number)),
          createdAt: new Date().toISOString(),
          uploadedBy,
        });
        const expired = await this.settle(t, folder, name, number, upload.release);
        return { number, expired };
      });
      committed.length = 0;
      dataKey.fill(0);
      logRetained(log, { folder, name, by: uploadedBy }, expired.versions);
      await removeParts(this.deps, expired.versions, expired.cdnKeys, log);
      return number;
    } finally {
      await Promise.all(committed.map((id) => partStorage.remove(id)));
    }
  }

  /**
   * After version `number` was added: moves the release pointer to it (`release`, or when it is
   * the only version), else pins it where it was; then applies retention (keepVersions).
   */
  private async settle(t: Tables, folder: string, name: string, number: number, release: boolean) {
    const r = await t.resources.get(folder, name);
    if (r === undefined) throw new Error(`resource ${folder}/${name} vanished while adding to it`);
    const before = r.versions.filter((v) => v.version !== number);
    if (release || before.length === 0) r.currentVersion = number;
    else r.currentVersion = currentOf({ ...r, versions: before }).version;
    await t.resources.setCurrent(r.id, r.currentVersion);
    return retainNewest(t, this.deps, r, this.deps.keepVersions);
  }

  /**
   * The device envelope of the version asked for (the released one by default) for the caller, its password checked (or the cache's
   * verification reused) and the device bound. `timer` gets the steps' times.
   */
  async issueEnvelope(
    caller: TokenCaller,
    ask: EnvelopeAsk,
    timer: StepTimer,
    log: FastifyBaseLogger,
  ): Promise<{
    envelope: SealedEnvelope;
    resource: EnvelopeResource;
    manifest: Manifest;
    user: { userId: string; email: string };
  }> {
    const { folder, name, password, hardware } = ask;
    const { cache, partStorage, masterKey } = this.deps;
    const verified = await verifyEnvelopeRequest(this.deps, caller, password, hardware, log);
    const { user } = verified;
    timer.lap('auth');
    timer.note('cache', verified.key === undefined ? 'miss' : 'hit');
    let key = verified.key;
    let dataKey: Buffer | undefined;
    try {
      const record = await this.find(folder, name);
      const version = versionOf(record, ask.version);
      const claim = { hash: hardware, factors: ask.hardwareFactors };
      await bindDevice(this.deps.store, user, claim, this.deps.binding, log);
      if (key === undefined) {
        key = await deriveEnvelopeKey(user.email, password, hardware);
        // Remembered against the record the password was verified with, not a later one.
        cache?.rememberKey(user, password, hardware, key);
      }
      timer.lap('kdf');
      const smallBlobId = version.smallBlobId;
      const readSmall = () => partStorage.readAll(smallBlobId, SMALL_PART_LIMIT);
      const small = await (cache === null ? readSmall() : cache.smallPart(smallBlobId, readSmall));
      timer.lap('read');
      dataKey = unwrapDataKey(
        masterKey,
        version.wrappedDataKey,
        dataKeyAad(record.id, version.version),
      );
      const resource = { folder, name, version: version.version };
      const payload = {
        resource,
        manifest: version.manifest,
        dataKey,
        small,
        cdnKey: version.cdnKey,
      };
      const envelope = sealEnvelope(key, payload, envelopeAad(resource));
      timer.lap('seal');
      await chargePull(this.deps.store, user.orgId, version.manifest);
      log.info(
        { event: 'envelope.issued', folder, name, version: version.version, userId: user.id },
        'envelope issued',
      );
      const who = { userId: user.id, email: user.email };
      return { envelope, resource, manifest: version.manifest, user: who };
    } finally {
      verified.done();
      key?.fill(0);
      dataKey?.fill(0);
    }
  }

  /**
   * Removes the resource, then its stored parts and CDN objects. The metadata no longer points
   * at them: a failure there only leaves unreferenced objects. Returns how many were left.
   */
  async remove(folder: string, name: string, log: FastifyBaseLogger): Promise<{ left: number }> {
    const removed = await this.deps.store.transaction(async (t) => {
      const r = await t.resources.get(folder, name);
      if (r === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
      await t.resources.remove(r.id);
      await scheduleCdnRemovals(t, this.deps.cdnObjects, orphanedCdnKeys(r.versions, []));
      return r;
    });
    const cdnKeys = orphanedCdnKeys(removed.versions, []);
    return removeParts(this.deps, removed.versions, cdnKeys, log);
  }

  /** Every version of `folder/name` (see versions.ts). */
  versions(folder: string, name: string): Promise<VersionsResponse> {
    return listVersions(this.deps.store, folder, name);
  }

  /** Makes `version` the released one (see versions.ts). */
  release(folder: string, name: string, version: number): Promise<ReleaseResponse> {
    return this.deps.store.transaction((t) => release(t, folder, name, version));
  }

  /** Deletes one version and its parts (see versions.ts). */
  removeVersion(
    target: { folder: string; name: string; version: number; force: boolean },
    log: FastifyBaseLogger,
  ): Promise<RemoveVersionResponse & { left: number }> {
    return removeVersion(this.deps, target, log);
  }

  /**
   * The version of `resource` (the released one when `wanted` is undefined) whose big part this
   * API serves, with its stored part's id; ERR_NOT_FOUND when there is none.
   */
  bigPart(
    resource: ResourceRecord,
    wanted: number | undefined,
  ): { version: ResourceVersion; blobId: string } {
    const version = versionOf(resource, wanted);
    if (version.bigBlobId === null) {
      throw new SluiceError('ERR_NOT_FOUND', 'this version keeps its big part on the CDN only');
    }
    return { version, blobId: version.bigBlobId };
  }

  openBigPart(blobId: string, range: ByteRange | undefined): Promise<Readable> {
    return this.deps.partStorage.openRead(blobId, range);
  }
}
