import type { FastifyBaseLogger } from 'fastify';
import type { CdnArea } from './cdnArea.js';
import type { PartArea, UploadArea } from './partArea.js';
import { throwIfSweepAborted } from './sweepAborted.js';
import type { SweepSource } from './sweepSource.js';

/** What one pass removed, and how many steps failed (they are tried again on the next pass). */
export interface SweepCounts {
  /** Multipart uploads begun before the grace period and never completed, now aborted. */
  uploadsAborted: number;
  /** Stored parts (resource parts, parcel bytes) that no record names, now deleted. */
  partsRemoved: number;
  /** CDN objects of deleted versions, left at delete time, now deleted. */
  cdnObjectsRemoved: number;
  /** Listings, reads of the source and removals that failed. */
  failures: number;
}

export function noCounts(): SweepCounts {
  return { uploadsAborted: 0, partsRemoved: 0, cdnObjectsRemoved: 0, failures: 0 };
}

export interface PassInputs {
  source: SweepSource;
  parts: readonly PartArea[];
  cdn: CdnArea | null;
  log: Pick<FastifyBaseLogger, 'info' | 'warn'> | undefined;
}

/**
 * One pass: aborts the open uploads, removes the unreferenced parts and the left CDN objects that
 * are older than `before` (ms since the epoch). A failed step is counted and logged and the pass
 * goes on; only an abort of `signal` ends it early.
 */
export class SweepPass {
  readonly counts = noCounts();

  constructor(
    private readonly inputs: PassInputs,
    private readonly before: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async run(): Promise<void> {
    const { parts, cdn } = this.inputs;
    for (const area of cdn === null ? parts : [...parts, cdn]) await this.abortStaleUploads(area);
    await this.removeOrphanParts();
    if (cdn !== null) await this.removeLeftCdnObjects(cdn);
  }

  private async abortStaleUploads(area: UploadArea): Promise<void> {
    const { signal, before } = this;
    await this.attempt({ step: 'list uploads', where: area.where }, async () => {
      for await (const upload of area.openUploads(signal)) {
        if (upload.initiatedAt >= before) continue;
        const { key } = upload;
        await this.attempt({ step: 'abort upload', where: area.where, key }, async () => {
          if (!(await area.abortUpload(upload, signal))) return;
          this.counts.uploadsAborted++;
          const initiated = new Date(upload.initiatedAt).toISOString();
          this.inputs.log?.info({ event: 'sweep.uploadAborted', key, initiated }, 'upload aborted');
        });
      }
    });
  }

  private async removeOrphanParts(): Promise<void> {
    const { signal, before } = this;
    const old: { area: PartArea; id: string }[] = [];
    for (const area of this.inputs.parts) {
      await this.attempt({ step: 'list parts', where: area.where }, async () => {
        for await (const part of area.parts(signal)) {
          if (part.modifiedAt < before) old.push({ area, id: part.id });
        }
      });
    }
    if (old.length === 0) return;
    // Read after listing: a part stored before the listing is recorded by now, or never will be.
    const referenced = await this.read('read referenced parts', () =>
      this.inputs.source.referencedBlobIds(),
    );
    if (referenced === undefined) return;
    if (referenced.size === 0) {
      // Far likelier a source that is not these parts' metadata (an empty or wrong database)
      // than every resource and parcel gone with each removal failed: remove nothing.
      this.counts.failures++;
      this.inputs.log?.warn(
        { event: 'sweep.refused', parts: old.length },
        'no record names any stored part: not removing any',
      );
      return;
    }
    for (const { area, id } of old) {
      if (referenced.has(id)) continue;
      await this.attempt({ step: 'remove part', where: area.where, id }, async () => {
        await area.removePart(id, signal);
        this.counts.partsRemoved++;
        this.inputs.log?.info(
          { event: 'sweep.partRemoved', where: area.where, id },
          'part removed',
        );
      });
    }
  }

  private async removeLeftCdnObjects(cdn: CdnArea): Promise<void> {
    const { source, log } = this.inputs;
    const pending = await this.read('read pending CDN deletions', () =>
      source.pendingCdnDeletions(),
    );
    if (pending === undefined || pending.length === 0) return;
    const live = await this.read('read referenced CDN keys', () => source.referencedCdnKeys());
    if (live === undefined) return;
    for (const cdnKey of new Set(pending)) {
      const key = cdn.objectKey(cdnKey);
      await this.attempt({ step: 'remove CDN object', where: cdn.where, key }, async () => {
        if (!live.has(cdnKey)) {
          const modifiedAt = await cdn.modifiedAt(cdnKey, this.signal);
          // Written within the grace period: perhaps a new upload to that key; stays pending.
          if (modifiedAt !== null && modifiedAt >= this.before) return;
          if (modifiedAt !== null) {
            await cdn.remove(cdnKey, this.signal);
            this.counts.cdnObjectsRemoved++;
            log?.info({ event: 'sweep.cdnObjectRemoved', key }, 'CDN object removed');
          }
        }
        await source.markCdnDeleted(cdnKey);
      });
    }
  }

  /** The source's answer, or undefined when reading it failed (counted and logged). */
  private async read<T>(step: string, read: () => Promise<T>): Promise<T | undefined> {
    let value: T | undefined;
    await this.attempt({ step }, async () => {
      value = await read();
    });
    return value;
  }

  /** Runs one step; a failure is counted and logged, unless the pass is being aborted. */
  private async attempt(what: Record<string, string>, step: () => Promise<void>): Promise<void> {
    try {
      throwIfSweepAborted(this.signal);
      await step();
    } catch (e) {
      if (this.signal?.aborted) throw e;
      this.counts.failures++;
      this.inputs.log?.warn({ event: 'sweep.stepFailed', ...what, err: e }, 'sweep step failed');
    }
  }
}
