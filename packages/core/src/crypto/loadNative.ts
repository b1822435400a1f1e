import { createRequire } from 'node:module';
import type { Binding, LoadResult } from '@sluice/native';

export interface NativeLoad {
  binding: Binding | null;
  path: string | null;
  errors: { candidate: string; message: string }[];
}

const REQUIRED: readonly (keyof Binding)[] = [
  'createCipher',
  'encryptFile',
  'decryptFile',
  'decryptChunk',
  'split',
  'concat',
  'sha256',
  'sha256File',
  'sha256FileChunks',
];

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Loads @sluice/native once; never throws. A binding missing part of the contract counts as a failure. */
export function loadNativeUncached(): NativeLoad {
  let result: LoadResult;
  try {
    const native = createRequire(import.meta.url)('@sluice/native') as { load(): LoadResult };
    result = native.load();
  } catch (e) {
    return {
      binding: null,
      path: null,
      errors: [{ candidate: '@sluice/native', message: message(e) }],
    };
  }
  const { binding, path } = result;
  const errors = [...result.errors];
  if (!binding) return { binding: null, path: null, errors };
  const missing = REQUIRED.filter((name) => typeof binding[name] !== 'function');
  if (missing.length > 0) {
    errors.push({
      candidate: path ?? '@sluice/native',
      message: `binding does not implement ${missing.join(', ')}`,
    });
    return { binding: null, path: null, errors };
  }
  return { binding, path, errors };
}

let cached: NativeLoad | undefined;

export function loadNative(): NativeLoad {
  cached ??= loadNativeUncached();
  return cached;
}
