import { isSluiceError, SluiceError, type SluiceErrorCode } from '@sluice/protocol';

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  syscall?: unknown;
  errno?: unknown;
  path?: unknown;
  name?: unknown;
}

const OPENSSL_BAD_DECRYPT = new Set([
  'ERR_OSSL_BAD_DECRYPT',
  'ERR_OSSL_EVP_BAD_DECRYPT',
  'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH',
  'ERR_OSSL_EVP_WRONG_FINAL_BLOCK_LENGTH',
  'ERR_BAD_DECRYPT',
]);

function classify(e: ErrorLike): SluiceErrorCode {
  const code = typeof e.code === 'string' ? e.code : '';
  if (OPENSSL_BAD_DECRYPT.has(code)) return 'ERR_BAD_DECRYPT';
  if (code === 'ERR_IO' || typeof e.syscall === 'string') return 'ERR_IO';
  if (code === 'ERR_CRYPTO' || code.startsWith('ERR_OSSL')) return 'ERR_CRYPTO';
  if (/^E[A-Z]+$/.test(code)) return 'ERR_IO'; // ENOENT, EACCES, ...
  return 'ERR_CRYPTO';
}

/**
 * Turns any failure from a backend (node:crypto, node:fs or the native binding) into a
 * SluiceError with the same meaning. SluiceErrors (ERR_ABORTED, ERR_BAD_BLOB...) and sluice's own
 * argument errors pass through.
 * `stackFrom`, when given, is an Error created before the failing call so the JS stack of the
 * caller survives (native errors carry no useful stack).
 */
export function toSluiceError(
  e: unknown,
  what: string,
  stackFrom?: Error,
): SluiceError | TypeError | RangeError {
  if (isSluiceError(e)) return e;
  // Argument errors raised by sluice itself stay TypeError/RangeError.
  if ((e instanceof TypeError || e instanceof RangeError) && !('code' in e)) return e;
  const like: ErrorLike = typeof e === 'object' && e !== null ? (e as ErrorLike) : {};
  const message = typeof like.message === 'string' ? like.message : String(e);
  const err = new SluiceError(classify(like), `${what}: ${message}`, {
    cause: e,
    syscall: typeof like.syscall === 'string' ? like.syscall : undefined,
    errno: typeof like.errno === 'number' ? Math.abs(like.errno) : undefined,
    path: typeof like.path === 'string' ? like.path : undefined,
  });
  if (stackFrom?.stack) {
    const frames = stackFrom.stack.split('\n').slice(1).join('\n');
    err.stack = `SluiceError: ${err.message}\n${frames}`;
  }
  return err;
}
