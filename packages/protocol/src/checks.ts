// Argument checks run in TypeScript before any backend is touched ("TypeScript validates,
// C++ computes"). Messages name the argument and never print key bytes.

export const KEY_BYTES = 32;
export const BLOCK_BYTES = 16;
export const MAX_THREADS = 64;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return 'Buffer';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

/** A Buffer view of `v` (no copy), or a TypeError naming `name`. */
export function toBytes(v: unknown, name: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`${name} must be a Buffer or Uint8Array, got ${typeName(v)}`);
}

function fixedBytes(v: unknown, name: string, length: number): Buffer {
  const b = toBytes(v, name);
  if (b.length !== length) {
    throw new RangeError(`${name} must be exactly ${length} bytes, got ${b.length}`);
  }
  return b;
}

export function checkKey(v: unknown, name = 'key'): Buffer {
  return fixedBytes(v, name, KEY_BYTES);
}

export function checkIv(v: unknown, name = 'iv'): Buffer {
  return fixedBytes(v, name, BLOCK_BYTES);
}

export function checkPath(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${typeName(v)}`);
  if (v.length === 0) throw new RangeError(`${name} must be a non-empty path`);
  if (v.includes('\0')) throw new RangeError(`${name} must not contain NUL bytes`);
  return v;
}

export function checkSize(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeName(v)}`);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${v}`);
  }
  return v;
}

export function checkPositiveMultipleOf16(v: unknown, name: string): number {
  const n = checkSize(v, name);
  if (n === 0 || n % BLOCK_BYTES !== 0) {
    throw new RangeError(`${name} must be a positive multiple of 16, got ${n}`);
  }
  return n;
}

export function checkThreads(v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new TypeError(`threads must be a number, got ${typeName(v)}`);
  if (!Number.isInteger(v) || v < 1 || v > MAX_THREADS) {
    throw new RangeError(`threads must be an integer in [1, ${MAX_THREADS}], got ${v}`);
  }
  return v;
}

export function checkSignal(v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, got ${typeName(v)}`);
  }
  return v;
}

export function checkOptions<T extends object>(v: unknown, name = 'options'): Partial<T> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null) {
    throw new TypeError(`${name} must be an object, got ${typeName(v)}`);
  }
  return v as Partial<T>;
}
