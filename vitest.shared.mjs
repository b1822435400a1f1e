// Shared vitest settings: when SLUICE_REPORT_DIR is set (scripts/test.mjs), every package also
// writes a JSON report there so the runner can sum passes and failures across all runs.
import { join } from 'node:path';

export function sharedTestConfig(name) {
  const dir = process.env.SLUICE_REPORT_DIR;
  const backend = process.env.SLUICE_BACKEND || 'auto';
  return {
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: dir
      ? ['default', ['json', { outputFile: join(dir, `${name}-${backend}.json`) }]]
      : ['default'],
  };
}
