/**
 * What the sweeper reads from the metadata, whatever holds it (the JSON file today, a database
 * next). Every pass asks afresh; the sweeper keeps nothing between passes.
 */
export interface SweepSource {
  /**
   * Every stored-part id a record names: each resource version's small and big part, and the
   * bytes of every parcel that is not a tombstone. A stored part outside this set and older than
   * the grace period is removed.
   */
  referencedBlobIds(): Promise<ReadonlySet<string>>;
  /**
   * The `cdnKey` of every recorded version: a pending deletion whose key a version names again
   * (a deleted version registered anew over its still-present object) is dropped, not executed.
   */
  referencedCdnKeys(): Promise<ReadonlySet<string>>;
  /** The `cdnKey`s of deleted versions whose CDN object could not be removed at delete time. */
  pendingCdnDeletions(): Promise<readonly string[]>;
  /**
   * Takes `cdnKey` off the pending deletions: its object is gone (removed now, or already), or a
   * recorded version names it again. Pending deletions of a key still too young stay pending.
   */
  markCdnDeleted(cdnKey: string): Promise<void>;
}
