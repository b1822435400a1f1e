import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { checkKey, checkPath, isSluiceError, SluiceError } from '@sluice/protocol';
import { sha256File } from '../crypto/cryptoBackend.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { blobSize, type OpenOptions, openFile } from './sealedBlob.js';

/** The `format` of what `sluice encrypt` writes beside a sealed file (docs/FORMAT.md §9). */
export const SEALED_FILE_FORMAT = 'sluice-sealed-file-v1';
/** HKDF-SHA-256 `info` of the key that MACs the plaintext (no salt, 32 bytes). */
export const SEALED_FILE_MAC_INFO = 'sluice-sealed-file-v1 mac';

/** What `sluice encrypt` records about a sealed file, so a decrypt can check key and bytes. */
export interface SealedFileManifest {
  format: typeof SEALED_FILE_FORMAT;
  algorithm: 'AES-256-CBC';
  plainSize: number;
  blobSize: number;
  /** Lower-case hex SHA-256 of the sealed file (IV ‖ ciphertext): checkable without the key. */
  blobSha256: string;
  /** Lower-case hex HMAC-SHA-256 of the plaintext under a key derived from the data key. */
  plainMac: string;
}

const FIELDS = ['format', 'algorithm', 'plainSize', 'blobSize', 'blobSha256', 'plainMac'];
const HEX = /^[0-9a-f]{64}$/;

function bad(message: string): SluiceError {
  return new SluiceError('ERR_BAD_MANIFEST', `invalid sealed-file manifest: ${message}`);
}

/** Checks an untrusted value (parsed JSON) as a sealed-file manifest, or ERR_BAD_MANIFEST. */
export function validateSealedFileManifest(value: unknown): SealedFileManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('expected an object');
  }
  const m = value as Record<string, unknown>;
  const unknown = Object.keys(m).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) throw bad(`unknown field(s) ${unknown.join(', ').slice(0, 200)}`);
  if (m.format !== SEALED_FILE_FORMAT) throw bad(`format must be "${SEALED_FILE_FORMAT}"`);
  if (m.algorithm !== 'AES-256-CBC') throw bad('algorithm must be "AES-256-CBC"');
  for (const f of ['plainSize', 'blobSize']) {
    const v = m[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw bad(`${f} must be a non-negative safe integer`);
    }
  }
  if (blobSize(m.plainSize as number) !== m.blobSize) {
    throw bad(`blobSize ${m.blobSize} is not the sealed size of ${m.plainSize} bytes`);
  }
  for (const f of ['blobSha256', 'plainMac']) {
    if (typeof m[f] !== 'string' || !HEX.test(m[f] as string)) {
      throw bad(`${f} must be 64 lower-case hex digits`);
    }
  }
  return {
    format: SEALED_FILE_FORMAT,
    algorithm: 'AES-256-CBC',
    plainSize: m.plainSize as number,
    blobSize: m.blobSize as number,
    blobSha256: m.blobSha256 as string,
    plainMac: m.plainMac as string,
  };
}

/** HMAC-SHA-256 of the file at `path` under the MAC key of `dataKey`. */
async function plainMac(path: string, dataKey: Buffer, signal?: AbortSignal): Promise<Buffer> {
  const macKey = Buffer.from(
    hkdfSync('sha256', dataKey, Buffer.alloc(0), SEALED_FILE_MAC_INFO, 32),
  );
  const hmac = createHmac('sha256', macKey);
  macKey.fill(0);
  try {
    const stream = createReadStream(path, {
      highWaterMark: 1 << 20,
      ...(signal ? { signal } : {}),
    });
    for await (const chunk of stream) hmac.update(chunk as Buffer);
  } catch (e) {
    throw toSluiceError(e, `reading ${path}`);
  }
  return hmac.digest();
}

/** The manifest of `blobPath`, the sealed file of `plainPath` under `key`. */
export async function describeSealedFile(
  plainPath: string,
  blobPath: string,
  key: Buffer | Uint8Array,
  options: { signal?: AbortSignal } = {},
): Promise<SealedFileManifest> {
  checkPath(plainPath, 'plainPath');
  checkPath(blobPath, 'blobPath');
  const k = Buffer.from(checkKey(key));
  try {
    const [plain, blob, blobDigest, mac] = await Promise.all([
      stat(plainPath),
      stat(blobPath),
      sha256File(blobPath, { signal: options.signal }),
      plainMac(plainPath, k, options.signal),
    ]);
    return validateSealedFileManifest({
      format: SEALED_FILE_FORMAT,
      algorithm: 'AES-256-CBC',
      plainSize: plain.size,
      blobSize: blob.size,
      blobSha256: blobDigest.toString('hex'),
      plainMac: mac.toString('hex'),
    });
  } catch (e) {
    throw toSluiceError(e, 'describing the sealed file');
  } finally {
    k.fill(0);
  }
}

/**
 * Opens the sealed file `src` into `dst` only if it is the one `manifest` describes: its size and
 * SHA-256 first (ERR_BAD_BLOB: damaged or replaced), then, before `dst` appears, the plaintext's
 * size and MAC (ERR_BAD_DECRYPT: the wrong key, even where its padding happens to pass).
 */
export async function openSealedFile(
  src: string,
  dst: string,
  key: Buffer | Uint8Array,
  manifest: SealedFileManifest,
  options: Omit<OpenOptions, 'verify'> = {},
): Promise<{ size: number }> {
  const m = validateSealedFileManifest(manifest);
  const k = Buffer.from(checkKey(key));
  const wrongKey = (why: string, cause?: unknown) =>
    new SluiceError('ERR_BAD_DECRYPT', `wrong key for ${src}: ${why}`, { cause });
  try {
    await checkSealedBytes(src, m, options.signal);
    return await openFile(src, dst, k, {
      ...options,
      verify: async (plain) => {
        const { size } = await stat(plain);
        const mac = size === m.plainSize ? await plainMac(plain, k, options.signal) : undefined;
        if (mac === undefined || !timingSafeEqual(mac, Buffer.from(m.plainMac, 'hex'))) {
          throw wrongKey("the plaintext does not match its manifest's MAC");
        }
      },
    }).catch((e: unknown) => {
      // The sealed bytes are the described ones, so a padding failure can only be the key.
      if (isSluiceError(e, 'ERR_BAD_DECRYPT') && !e.message.startsWith('wrong key')) {
        throw wrongKey('its padding does not check', e);
      }
      throw e;
    });
  } finally {
    k.fill(0);
  }
}

/** ERR_BAD_BLOB unless `src` has the size and SHA-256 the manifest records. */
async function checkSealedBytes(
  src: string,
  m: SealedFileManifest,
  signal: AbortSignal | undefined,
): Promise<void> {
  let size: number;
  try {
    size = (await stat(src)).size;
  } catch (e) {
    throw toSluiceError(e, `reading ${src}`);
  }
  const why =
    size !== m.blobSize
      ? `${size} bytes, not ${m.blobSize}`
      : (await sha256File(src, { signal })).toString('hex') !== m.blobSha256
        ? 'its SHA-256 differs'
        : undefined;
  if (why !== undefined) {
    throw new SluiceError(
      'ERR_BAD_BLOB',
      `${src} is not the sealed file its manifest describes (${why}): damaged or replaced`,
    );
  }
}
