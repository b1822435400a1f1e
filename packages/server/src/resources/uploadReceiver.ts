import { Transform, type TransformCallback } from 'node:stream';
import type { Multipart } from '@fastify/multipart';
import {
  isObjectKey,
  isSluiceError,
  type Manifest,
  SluiceError,
  UPLOAD_FIELDS,
  type UploadField,
  validateManifest,
} from '@sluice/protocol';
import type { FastifyRequest } from 'fastify';
import { isApiError } from '../errors.js';
import type { PartStorage, PendingBlob } from '../stores/partStorage.js';
import { FIELD_LIMIT, SMALL_PART_LIMIT } from './limits.js';
import { checkResourceName } from './resourceName.js';
import type { NewVersion } from './service.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const FIELD_NAMES: ReadonlySet<string> = new Set(UPLOAD_FIELDS);

/** What a multipart upload body held: its text fields and its file parts, in temp blobs. */
export interface ReceivedUpload {
  fields: Partial<Record<UploadField, unknown>>;
  /** The `manifest` field, parsed and validated as it arrived. */
  manifest?: Manifest;
  small?: PendingBlob;
  big?: PendingBlob;
}

/**
 * Checks a manifest the moment its field arrives, before any file part is read (the name when
 * the `name` field came first, as clients send it). Throws to refuse the upload.
 */
export type ManifestCheck = (manifest: Manifest, name: string | undefined) => Promise<void>;

/** Fails the stream with 413 once more than `limit` bytes pass. */
class SizeLimit extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      done(new SluiceError('ERR_TOO_LARGE', `${this.what} exceeds ${this.limit} bytes`));
      return;
    }
    done(null, chunk);
  }
}

/**
 * Streams the multipart body into `received`: fields into memory (bounded), file parts into
 * temp blobs of `storage`. What it stored stays in `received` on failure, for the caller to
 * discard.
 */
export async function receiveUpload(
  request: FastifyRequest,
  storage: PartStorage,
  bigPartLimit: number,
  received: ReceivedUpload,
  checkManifest: ManifestCheck,
): Promise<void> {
  const parts = request.parts({
    limits: {
      fileSize: Math.max(SMALL_PART_LIMIT, bigPartLimit) + 1,
      fieldSize: FIELD_LIMIT,
      files: 2,
      fields: 5,
      parts: 7,
    },
  });
  // After a failure the remaining parts are dropped unread (destroying a file stream ends the
  // parse), so the answer goes out at once.
  let failure: unknown;
  try {
    for await (const part of parts) {
      if (failure !== undefined) {
        if (part.type === 'file') part.file.destroy();
        continue;
      }
      try {
        await receivePart(part, { storage, bigPartLimit, checkManifest }, received);
      } catch (e) {
        failure = e;
        if (part.type === 'file' && !part.file.destroyed) part.file.destroy();
      }
    }
  } catch (e) {
    // Thrown by the parser itself (no boundary, not multipart inside): the client's fault. Its
    // own limit errors carry a 4xx statusCode and keep it; storage errors come from receivePart.
    failure ??= isApiError(e) || hasClientStatus(e) ? e : malformedMultipart(e);
  }
  if (failure !== undefined) {
    // The parser is unpiped by now; read and drop the rest of the body so that the client,
    // still sending, gets to read the answer (HTTP/1.1 clients rarely read before they finish).
    request.raw.resume();
    throw failure;
  }
}

/** Removes the temp blobs of an upload (committed ones are gone already). */
export async function discardUpload(received: ReceivedUpload): Promise<void> {
  await Promise.all([received.small?.discard(), received.big?.discard()]);
}

/** The new version a received upload describes, its fields checked in order. */
export function parseUpload(received: ReceivedUpload): NewVersion {
  const { fields, small, big } = received;
  const name = checkResourceName(fields.name, 'name');
  const { manifest } = received;
  if (manifest === undefined) throw new SluiceError('ERR_BAD_REQUEST', 'manifest missing');
  const dataKey = parseDataKeyField(fields.dataKey);
  let cdnKey: string | null = null;
  if (fields.cdnKey !== undefined) {
    if (!isObjectKey(fields.cdnKey)) throw new SluiceError('ERR_BAD_REQUEST', 'invalid cdnKey');
    cdnKey = fields.cdnKey;
  }
  if (small === undefined) throw new SluiceError('ERR_BAD_REQUEST', 'file part small missing');
  return { name, manifest, dataKey, cdnKey, small, big, release: parseRelease(fields.release) };
}

/** The `release` field: `true` (the default when absent) or `false`. */
function parseRelease(value: unknown): boolean {
  if (value === undefined || value === 'true') return true;
  if (value === 'false') return false;
  throw new SluiceError('ERR_BAD_REQUEST', 'release must be true or false');
}

function hasClientStatus(e: unknown): boolean {
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function malformedMultipart(e: unknown): SluiceError {
  return new SluiceError('ERR_BAD_REQUEST', 'malformed multipart body', { cause: e });
}

async function receivePart(
  part: Multipart,
  how: { storage: PartStorage; bigPartLimit: number; checkManifest: ManifestCheck },
  received: ReceivedUpload,
): Promise<void> {
  const { storage, bigPartLimit } = how;
  if (part.type === 'field') {
    if (!FIELD_NAMES.has(part.fieldname)) {
      throw new SluiceError('ERR_BAD_REQUEST', `unknown field ${part.fieldname.slice(0, 64)}`);
    }
    if (part.valueTruncated) {
      throw new SluiceError(
        'ERR_TOO_LARGE',
        `field ${part.fieldname} exceeds ${FIELD_LIMIT} bytes`,
      );
    }
    const key = part.fieldname as UploadField;
    if (received.fields[key] !== undefined) {
      throw new SluiceError('ERR_BAD_REQUEST', `field ${key} given twice`);
    }
    received.fields[key] = part.value;
    // Refuse a bad name, or a manifest this upload may not register, before any file is stored.
    if (key === 'name') checkResourceName(part.value, 'name');
    if (key === 'manifest') {
      received.manifest = parseManifestField(part.value);
      const name = received.fields.name;
      await how.checkManifest(received.manifest, typeof name === 'string' ? name : undefined);
    }
    return;
  }
  const which = part.fieldname;
  if (which !== 'small' && which !== 'big') {
    throw new SluiceError('ERR_BAD_REQUEST', `unknown file part ${which.slice(0, 64)}`);
  }
  if (received[which] !== undefined) {
    throw new SluiceError('ERR_BAD_REQUEST', `file part ${which} given twice`);
  }
  const limit = which === 'small' ? SMALL_PART_LIMIT : bigPartLimit;
  received[which] = await storage.receive(part.file, new SizeLimit(limit, `${which} part`));
}

function parseManifestField(value: unknown): Manifest {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new SluiceError('ERR_BAD_REQUEST', 'manifest is not valid JSON');
    }
  }
  try {
    return validateManifest(parsed);
  } catch (e) {
    if (isSluiceError(e, 'ERR_BAD_MANIFEST')) throw new SluiceError('ERR_BAD_REQUEST', e.message);
    throw e;
  }
}

function parseDataKeyField(value: unknown): Buffer {
  if (typeof value !== 'string' || !BASE64.test(value.trim())) {
    throw new SluiceError('ERR_BAD_REQUEST', 'dataKey must be base64');
  }
  const key = Buffer.from(value.trim(), 'base64');
  if (key.length !== 32) throw new SluiceError('ERR_BAD_REQUEST', 'dataKey must be 32 bytes');
  return key;
}
