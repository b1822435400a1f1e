import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Binding, LoadResult } from '../index.js';

const require = createRequire(import.meta.url);
const { load } = require('../index.js') as { load: () => LoadResult };

/** The binding under test: SLUICE_NATIVE_PATH when set (the sanitizer run), else build/. */
export function binding(): Binding {
  const result = load();
  if (!result.binding) {
    const why = result.errors.map((e) => `  ${e.candidate}: ${e.message}`).join('\n');
    throw new Error(
      `native binding did not load; run \`pnpm --filter @sluice/native build\`\n${why}`,
    );
  }
  return result.binding;
}

/** Sanitizer runs set SLUICE_TEST_SCALE=small to shrink the big inputs. */
export const small = process.env.SLUICE_TEST_SCALE === 'small';
export const MiB = 1024 * 1024;

export function tempDir(): { dir: string; file: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-native-'));
  return {
    dir,
    file: (name) => join(dir, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Deterministic pseudo-random bytes (fast; content only needs to be varied). */
export function patternBytes(size: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) buf[i] = (i * 31 + seed) & 0xff;
  return buf;
}
