// Test-only: a SweepSource held in memory, with the calls it got.
import type { SweepSource } from './sweepSource.js';

export class MemorySource implements SweepSource {
  readonly blobIds = new Set<string>();
  readonly cdnKeys = new Set<string>();
  pending: string[] = [];
  readonly marked: string[] = [];
  /** When set, referencedBlobIds waits for it (to hold a pass inside the lock). */
  gate: Promise<void> | undefined;

  async referencedBlobIds(): Promise<ReadonlySet<string>> {
    await this.gate;
    return new Set(this.blobIds);
  }

  async referencedCdnKeys(): Promise<ReadonlySet<string>> {
    return new Set(this.cdnKeys);
  }

  async pendingCdnDeletions(): Promise<readonly string[]> {
    return [...this.pending];
  }

  async markCdnDeleted(cdnKey: string): Promise<void> {
    this.marked.push(cdnKey);
    this.pending = this.pending.filter((k) => k !== cdnKey);
  }
}

/** A promise and the function that resolves it. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}
