import { checkSize, thirtyPercent } from '@sluice/protocol';

/**
 * Size of the small part of a sealed blob: min(smallSizeKB·1024, ⌊30% of blobSize⌋), with exact
 * integer arithmetic (⌊blobSize·3/10⌋, no floating-point 0.3).
 */
export function smallPartSize(blobSize: number, smallSizeKB: number): number {
  checkSize(blobSize, 'blobSize');
  checkSize(smallSizeKB, 'smallSizeKB');
  if (smallSizeKB === 0) throw new RangeError('smallSizeKB must be at least 1');
  return Math.min(smallSizeKB * 1024, thirtyPercent(blobSize));
}

export { thirtyPercent };
