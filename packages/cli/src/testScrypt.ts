import type { ScryptParams } from '@sluice/server';

/**
 * TEST ONLY: `SLUICE_TEST_SCRYPT_N` (a power of two, e.g. 4096) lowers the scrypt cost of password
 * hashes so test suites with many logins stay fast. Never set it on a real server.
 */
export function testScryptParams(env: NodeJS.ProcessEnv = process.env): ScryptParams | undefined {
  const raw = env.SLUICE_TEST_SCRYPT_N;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  const logN = Math.log2(n);
  if (!Number.isInteger(logN) || logN < 1) {
    throw new RangeError(`SLUICE_TEST_SCRYPT_N must be a power of two, got '${raw}'`);
  }
  return { logN, r: 8, p: 1 };
}
