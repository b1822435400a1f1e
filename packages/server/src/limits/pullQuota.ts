import { type Manifest, SluiceError } from '@sluice/protocol';
import type { Store } from '../stores/store.js';

/** The calendar month (UTC) of `at`, as pull_usage keys it: 'YYYY-MM'. */
export function usageMonth(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** The bytes one envelope lets a device pull: its version's small and big parts. */
export function pulledBytes(manifest: Manifest): number {
  return manifest.smallSize + manifest.bigSize;
}

/**
 * Counts an envelope of `manifest` against the monthly pull quota of organisation `orgId`, in
 * one transaction: adds the version's bytes to this month's usage, or, when that would take the
 * usage past `monthly_quota_bytes`, refuses with ERR_QUOTA and adds nothing. Every envelope
 * issued counts, whether or not its request skipped scrypt through the envelope cache.
 */
export async function chargePull(
  store: Store,
  orgId: string,
  manifest: Manifest,
  at = new Date(),
): Promise<void> {
  const bytes = pulledBytes(manifest);
  const month = usageMonth(at);
  await store.transaction(async (t) => {
    const limits = await t.limits.get(orgId);
    const quota = limits?.monthlyQuotaBytes ?? null;
    if (quota !== null) {
      const used = await t.limits.usage(orgId, month);
      if (used + bytes > quota) {
        throw new SluiceError(
          'ERR_QUOTA',
          `organisation ${orgId} has pulled ${used} of its ${quota} bytes this month (UTC); ` +
            `this version needs ${bytes} more; an admin can raise the monthly quota`,
        );
      }
    }
    await t.limits.addUsage(orgId, month, bytes);
  });
}
