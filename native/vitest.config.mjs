import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { sharedTestConfig } from '../vitest.shared.mjs';

const test = sharedTestConfig('native');
// The sanitizer run (scripts/test-sanitize.sh) reports under its own name, not native-<backend>.
if (process.env.SLUICE_SANITIZE === '1') {
  const dir = process.env.SLUICE_REPORT_DIR;
  test.reporters = dir
    ? ['default', ['json', { outputFile: join(dir, 'native-sanitize.json') }]]
    : ['default'];
}

export default defineConfig({ test });
