import { SluiceError } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { invalidSetting } from '../errors.js';
import { CdnArea } from './cdnArea.js';
import type { PartArea } from './partArea.js';
import type { S3Target } from './s3Target.js';
import type { SweepLock } from './sweepLock.js';
import { type SweepCounts, SweepPass } from './sweepPass.js';
import type { SweepSource } from './sweepSource.js';

export type { SweepCounts } from './sweepPass.js';

/** Default grace period: only uploads and objects older than this are touched. */
export const DEFAULT_SWEEP_GRACE_MS = 24 * 60 * 60 * 1000;

export interface SweeperOptions {
  /** The records: which parts and CDN keys are in use, which CDN objects are left to delete. */
  source: SweepSource;
  /** Held for each pass, so that one sweeper at a time runs one. */
  lock: SweepLock;
  /**
   * Where resource parts and parcel bytes are stored: `S3PartArea` over the storage bucket and
   * prefix, or `FilePartArea`s over `<dataDir>/blobs` and `<dataDir>/parcels/blobs`. Every part
   * stored there must be named by `source`, or it is removed.
   */
  parts: readonly PartArea[];
  /** The S3 CDN's bucket (uploader keys) and prefix; null when big parts are not on S3. */
  cdn: S3Target | null;
  /**
   * Only uploads begun, and objects written, longer ago than this are touched (default 24 h). It
   * must exceed the longest upload plus the time to record it.
   */
  graceMs?: number;
  log?: Pick<FastifyBaseLogger, 'info' | 'warn'>;
}

/**
 * Since the sweeper was made: what /metrics reports. `failures` also counts loop passes that
 * could not take or release the lock.
 */
export interface SweepTotals extends SweepCounts {
  /** Passes this sweeper ran (it held the lock). */
  passes: number;
  /** Passes it skipped because another sweeper held the lock. */
  skipped: number;
  /** When its last pass ended (ms since the epoch), or null. */
  lastPassAt: number | null;
  /** How long that pass took (ms), or null. */
  lastPassMs: number | null;
}

interface Loop {
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
}

/**
 * Removes what crashes and failed deletions leave in the stores, once it is older than the grace
 * period: multipart uploads never completed (under the part storage's prefix and the CDN's),
 * stored parts and parcel bytes no record names, and CDN objects of deleted versions whose
 * removal failed. `sweep()` runs one pass; `start(intervalMs)` runs one every interval until
 * `stop()`. A pass runs only while this sweeper holds the lock; another's pass is skipped.
 */
export class Sweeper {
  readonly graceMs: number;
  readonly #source: SweepSource;
  readonly #lock: SweepLock;
  readonly #parts: readonly PartArea[];
  readonly #cdn: CdnArea | null;
  readonly #log: SweeperOptions['log'];
  readonly #totals: SweepTotals = {
    uploadsAborted: 0,
    partsRemoved: 0,
    cdnObjectsRemoved: 0,
    failures: 0,
    passes: 0,
    skipped: 0,
    lastPassAt: null,
    lastPassMs: null,
  };
  #loop: Loop | undefined;

  constructor(options: SweeperOptions) {
    const graceMs = options.graceMs ?? DEFAULT_SWEEP_GRACE_MS;
    if (!Number.isSafeInteger(graceMs) || graceMs < 0) {
      throw invalidSetting('graceMs', 'must be a whole number of milliseconds, 0 or more');
    }
    this.graceMs = graceMs;
    this.#source = options.source;
    this.#lock = options.lock;
    this.#parts = [...options.parts];
    this.#cdn = options.cdn === null ? null : new CdnArea(options.cdn);
    this.#log = options.log;
  }

  /** A copy of the running totals. */
  get totals(): SweepTotals {
    return { ...this.#totals };
  }

  /**
   * One pass, if the lock is free: resolves with what it removed, or null when another sweeper
   * holds the lock. Rejects only when `signal` aborts it or the lock fails.
   */
  async sweep(options: { signal?: AbortSignal } = {}): Promise<SweepCounts | null> {
    if (!(await this.#lock.tryAcquire())) {
      this.#totals.skipped++;
      return null;
    }
    const started = Date.now();
    const inputs = { source: this.#source, parts: this.#parts, cdn: this.#cdn, log: this.#log };
    const pass = new SweepPass(inputs, started - this.graceMs, options.signal);
    try {
      await pass.run();
      return { ...pass.counts };
    } finally {
      this.#record(pass.counts, started);
      await this.#lock.release();
    }
  }

  /** Runs a pass every `intervalMs` (the first one `intervalMs` from now) until `stop()`. */
  start(intervalMs: number): void {
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
      throw invalidSetting('intervalMs', 'must be a whole number of milliseconds, 1 or more');
    }
    if (this.#loop !== undefined) {
      throw new SluiceError('ERR_INVALID_ARG', 'the sweeper is already started');
    }
    const loop: Loop = { controller: new AbortController(), timer: undefined, running: undefined };
    this.#loop = loop;
    const { signal } = loop.controller;
    const next = () => {
      loop.timer = setTimeout(() => {
        loop.running = this.#tick(signal).finally(() => {
          loop.running = undefined;
          if (!signal.aborted) next();
        });
      }, intervalMs);
      loop.timer.unref();
    };
    next();
  }

  /** Ends the loop: aborts a pass in flight and resolves once it has stopped. */
  async stop(): Promise<void> {
    const loop = this.#loop;
    if (loop === undefined) return;
    this.#loop = undefined;
    clearTimeout(loop.timer);
    loop.controller.abort();
    await loop.running;
  }

  async #tick(signal: AbortSignal): Promise<void> {
    try {
      await this.sweep({ signal });
    } catch (e) {
      if (signal.aborted) return;
      this.#totals.failures++;
      this.#log?.warn({ event: 'sweep.failed', err: e }, 'sweep pass failed');
    }
  }

  #record(counts: SweepCounts, started: number): void {
    const totals = this.#totals;
    totals.passes++;
    totals.uploadsAborted += counts.uploadsAborted;
    totals.partsRemoved += counts.partsRemoved;
    totals.cdnObjectsRemoved += counts.cdnObjectsRemoved;
    totals.failures += counts.failures;
    totals.lastPassAt = Date.now();
    totals.lastPassMs = totals.lastPassAt - started;
    const removed = counts.uploadsAborted + counts.partsRemoved + counts.cdnObjectsRemoved;
    if (removed > 0 || counts.failures > 0) {
      this.#log?.info(
        { event: 'sweep.done', ...counts, ms: totals.lastPassMs },
        'sweep removed what crashes and failed deletions left',
      );
    }
  }
}
