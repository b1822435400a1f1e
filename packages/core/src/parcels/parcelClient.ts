import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { isSluiceError, SluiceError } from '@sluice/protocol';
import { sha256File } from '../crypto/cryptoBackend.js';
import { throwIfAborted } from '../platform/abort.js';
import { atomicOutput } from '../platform/atomicOutput.js';
import { HttpError, isHttpError } from '../session/httpErrors.js';
import { Session } from '../session/session.js';

export interface ParcelClientOptions {
  /** The resource API, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string | URL;
  /** The P-256 private key: a KeyObject or PKCS#8 PEM text. */
  privateKey?: KeyObject | string;
  /** A PKCS#8 PEM file holding the key (mode 0600: a file others may read is refused). */
  keyFile?: string;
  /** Extra attempts for token-free requests (inspect, token requests) after a network error or 5xx (default 3). */
  retries?: number;
}

/** What `inspect(id, 'metadata')` returns. */
export interface ParcelMetadata {
  id: string;
  size: number;
  /** Lowercase hex SHA-256 of the content. */
  sha256: string;
  createdAt: string;
}

export interface ParcelSignalOptions {
  signal?: AbortSignal;
}

export interface ParcelPutResult {
  id: string;
  /** True when this key had already stored the same content (nothing was stored again). */
  existed: boolean;
}

export interface ParcelGetOptions extends ParcelSignalOptions {
  /** A file path (written atomically, 0600) or `'buffer'` for the bytes in memory. */
  to: string;
}

export interface ParcelGetResult extends ParcelMetadata {
  /** The file written (when `to` was a path). */
  path?: string;
  /** The content (when `to` was `'buffer'`). */
  data?: Buffer;
}

type ParcelOperation =
  | { name: 'upload'; hash: string }
  | { name: 'download' | 'remove'; id: string };

const ID = /^[0-9a-f]{64}$/;

/**
 * A client of the parcel API (docs/API.md, "Parcels"): stores, fetches, inspects and removes
 * parcels with one-time tokens, each request signed with this client's P-256 key. Content is
 * hashed before upload (the token names the hash) and checked against the server's metadata
 * before a download is handed over.
 */
export class ParcelClient {
  /** Lowercase hex of the first 20 bytes of SHA-256 over the 65-byte public key. */
  readonly address: string;
  /** The uncompressed public key `04 ‖ x ‖ y`, 130 hex digits (the `X-Public-Key` header). */
  readonly publicKeyHex: string;
  readonly baseUrl: string;
  private readonly privateKey: KeyObject;
  private readonly session: Session;

  constructor(options: ParcelClientOptions) {
    if ((options.privateKey === undefined) === (options.keyFile === undefined)) {
      throw new SluiceError('ERR_INVALID_ARG', 'give ParcelClient one of privateKey or keyFile');
    }
    this.privateKey =
      options.keyFile !== undefined
        ? readKeyFile(options.keyFile)
        : toP256Key(options.privateKey as KeyObject | string, 'privateKey');
    this.session = new Session({
      apiUrl: options.baseUrl,
      verifyTokens: false,
      ...(options.retries === undefined ? {} : { retries: options.retries }),
    });
    this.baseUrl = this.session.apiUrl;
    this.publicKeyHex = publicKeyHexOf(this.privateKey);
    this.address = parcelAddressOf(this.publicKeyHex);
  }

  /** A new P-256 private key as PKCS#8 PEM. */
  static generateKey(): string {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /**
   * Writes `pem` (a new key by default) to `path` with mode 0600, refusing to overwrite an
   * existing file. Returns the key's address.
   */
  static async writeKeyFile(path: string, pem = ParcelClient.generateKey()): Promise<string> {
    const key = toP256Key(pem, 'pem');
    try {
      await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      const exists = (e as NodeJS.ErrnoException).code === 'EEXIST';
      throw new SluiceError(
        'ERR_IO',
        exists ? `${path} exists; refusing to overwrite a key` : `cannot write ${path}`,
        { cause: e, path },
      );
    }
    return parcelAddressOf(publicKeyHexOf(key));
  }

  /** The parcel id of content with SHA-256 `sha256` stored by this client's key. */
  parcelId(sha256: string): string {
    return createHash('sha256')
      .update(Buffer.from(this.address, 'hex'))
      .update(Buffer.from(sha256, 'hex'))
      .digest('hex');
  }

  /**
   * Stores a file, bytes or a stream. A stream is first copied to a private temp file (its hash
   * must be known before the upload starts). The body is streamed, never held whole in memory.
   */
  async put(
    source: string | Uint8Array | Readable,
    options: ParcelSignalOptions = {},
  ): Promise<ParcelPutResult> {
    const { signal } = options;
    throwIfAborted(signal);
    if (source instanceof Readable) {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-'));
      try {
        const path = join(dir, 'content');
        await pipeline(source, createWriteStream(path, { mode: 0o600, flags: 'wx' }), {
          ...(signal === undefined ? {} : { signal }),
        }).catch((e: unknown) => {
          throw wrapIo(e, signal, 'reading the parcel stream');
        });
        return await this.putFile(path, signal);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    if (typeof source === 'string') return this.putFile(source, signal);
    if (!(source instanceof Uint8Array)) {
      throw new SluiceError('ERR_INVALID_ARG', 'put takes a file path, a Uint8Array or a Readable');
    }
    const hash = createHash('sha256').update(source).digest('hex');
    return this.upload(hash, source, signal);
  }

  /**
   * Fetches parcel `id` (this key's own) into `to` (a file, renamed into place only once its size
   * and SHA-256 match the server's metadata, which must in turn match `id`) or into memory.
   */
  async get(id: string, options: ParcelGetOptions): Promise<ParcelGetResult> {
    checkId(id);
    const { signal, to } = options;
    if (typeof to !== 'string' || to === '') {
      throw new SluiceError('ERR_INVALID_ARG', "get needs to: a file path or 'buffer'");
    }
    const meta = await this.inspect(id, 'metadata', { signal });
    const res = await this.signed(
      'GET',
      `/api/v1/parcels/${id}`,
      { name: 'download', id },
      {
        signal,
        raw: true,
      },
    );
    const body = res.body;
    if (body === null) throw badResponse(`GET parcel ${id} answered without a body`);
    const source = Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>);
    const check = new Digest();
    const verify = () => {
      if (check.size !== meta.size || check.hex() !== meta.sha256) {
        throw badResponse(
          `parcel ${id}: received ${check.size} bytes that do not match its metadata (size ${meta.size}, SHA-256)`,
        );
      }
      if (this.parcelId(meta.sha256) !== id) {
        throw badResponse(`parcel ${id}: its metadata names content that is not this id's`);
      }
    };
    if (to === 'buffer') {
      const chunks: Buffer[] = [];
      await pipeline(
        source,
        check,
        async (received: AsyncIterable<Buffer>) => {
          for await (const chunk of received) chunks.push(chunk);
        },
        ...(signal === undefined ? [] : [{ signal }]),
      ).catch((e: unknown) => {
        throw wrapIo(e, signal, `reading parcel ${id}`);
      });
      verify();
      return { ...meta, data: Buffer.concat(chunks) };
    }
    await atomicOutput([to], { signal }, async ([temp]) => {
      await pipeline(source, check, createWriteStream(temp as string), {
        ...(signal === undefined ? {} : { signal }),
      }).catch((e: unknown) => {
        throw wrapIo(e, signal, `reading parcel ${id}`);
      });
      verify();
    });
    return { ...meta, path: to };
  }

  /** The public facts of any parcel (no token needed): its metadata or its owner's address. */
  inspect(id: string, key?: 'metadata', options?: ParcelSignalOptions): Promise<ParcelMetadata>;
  inspect(id: string, key: 'owner', options?: ParcelSignalOptions): Promise<{ owner: string }>;
  async inspect(
    id: string,
    key: 'metadata' | 'owner' = 'metadata',
    options: ParcelSignalOptions = {},
  ): Promise<ParcelMetadata | { owner: string }> {
    checkId(id);
    if (key !== 'metadata' && key !== 'owner') {
      throw new SluiceError('ERR_INVALID_ARG', "inspect key must be 'metadata' or 'owner'");
    }
    const answer = await gone(
      this.session.request<Record<string, unknown>>('GET', `/api/v1/parcels/${id}?key=${key}`, {
        auth: false,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }),
    );
    if (key === 'owner') {
      if (typeof answer?.owner !== 'string') throw badResponse(`inspect ${id} answered no owner`);
      return { owner: answer.owner };
    }
    const { size, sha256, createdAt } = answer ?? {};
    if (
      answer?.id !== id ||
      !Number.isSafeInteger(size) ||
      typeof sha256 !== 'string' ||
      !ID.test(sha256) ||
      typeof createdAt !== 'string'
    ) {
      throw badResponse(`inspect ${id} answered malformed metadata`);
    }
    return { id, size: size as number, sha256, createdAt };
  }

  /** Removes parcel `id` (this key's own); afterwards it answers ERR_GONE. */
  async remove(id: string, options: ParcelSignalOptions = {}): Promise<void> {
    checkId(id);
    await this.signed(
      'DELETE',
      `/api/v1/parcels/${id}`,
      { name: 'remove', id },
      {
        signal: options.signal,
      },
    );
  }

  private async putFile(path: string, signal: AbortSignal | undefined): Promise<ParcelPutResult> {
    let size: number;
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new Error('not a regular file');
      size = info.size;
    } catch (e) {
      throw new SluiceError('ERR_IO', `cannot read ${path}`, { cause: e, path });
    }
    const hash = (await sha256File(path, signal === undefined ? {} : { signal })).toString('hex');
    const body = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
    return this.upload(hash, body, signal, size);
  }

  private async upload(
    hash: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    signal: AbortSignal | undefined,
    size?: number,
  ): Promise<ParcelPutResult> {
    const res = await this.signed(
      'POST',
      '/api/v1/parcels',
      { name: 'upload', hash },
      {
        signal,
        raw: true,
        body,
        headers: {
          'content-type': 'application/octet-stream',
          ...(size === undefined ? {} : { 'content-length': String(size) }),
        },
      },
    );
    let answer: { id?: unknown };
    try {
      answer = (await res.json()) as { id?: unknown };
    } catch (e) {
      throw badResponse('the upload answer is not JSON', e);
    }
    if (answer.id !== this.parcelId(hash)) {
      throw badResponse('the server answered an upload with an id that is not this content’s');
    }
    return { id: answer.id as string, existed: res.status === 200 };
  }

  /** Asks for a token for `operation`, signs it and sends the request once (tokens are one-time). */
  private async signed(
    method: string,
    path: string,
    operation: ParcelOperation,
    options: {
      signal: AbortSignal | undefined;
      raw?: boolean;
      body?: Uint8Array | ReadableStream<Uint8Array>;
      headers?: Record<string, string>;
    },
  ): Promise<Response> {
    const signal = options.signal === undefined ? {} : { signal: options.signal };
    const { token } = await this.session.request<{ token?: unknown }>('POST', '/api/v1/auth', {
      json: { user: this.address, operation },
      auth: false,
      idempotent: true,
      ...signal,
    });
    if (typeof token !== 'string') throw badResponse('the token request answered no token');
    const signature = sign('sha256', Buffer.from(token, 'utf8'), {
      key: this.privateKey,
      dsaEncoding: 'ieee-p1363',
    }).toString('hex');
    return gone(
      this.session.request(method, path, {
        auth: false,
        idempotent: false,
        raw: true,
        headers: {
          ...options.headers,
          'x-auth-token': token,
          'x-public-key': this.publicKeyHex,
          'x-signature': signature,
        },
        ...(options.body === undefined ? {} : { body: options.body }),
        ...signal,
      }),
    );
  }
}

/** Hashes and counts what passes through. */
class Digest extends Transform {
  size = 0;
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  hex(): string {
    return this.hash.copy().digest('hex');
  }
}

/** 410 becomes ERR_GONE (the generic mapping calls it ERR_NOT_FOUND). */
async function gone<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (e) {
    if (isHttpError(e) && e.status === 410) {
      throw new HttpError('ERR_GONE', {
        status: e.status,
        method: e.method,
        url: e.url,
        ...(e.serverMessage === undefined ? {} : { serverMessage: e.serverMessage }),
        ...(e.serverCode === undefined ? {} : { serverCode: e.serverCode }),
        cause: e,
      });
    }
    throw e;
  }
}

function checkId(id: unknown): void {
  if (typeof id !== 'string' || !ID.test(id)) {
    throw new SluiceError('ERR_INVALID_ARG', 'a parcel id is 64 lowercase hex digits');
  }
}

function badResponse(message: string, cause?: unknown): SluiceError {
  return new SluiceError('ERR_BAD_RESPONSE', message, cause === undefined ? {} : { cause });
}

function wrapIo(e: unknown, signal: AbortSignal | undefined, what: string): SluiceError {
  if (signal?.aborted) return new SluiceError('ERR_ABORTED', 'operation aborted', { cause: e });
  if (isSluiceError(e)) return e;
  return new SluiceError('ERR_IO', `${what} failed`, { cause: e });
}

function toP256Key(key: KeyObject | string, what: string): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (e) {
    throw new SluiceError('ERR_INVALID_ARG', `${what} is not a PEM private key`, { cause: e });
  }
  if (
    k.type !== 'private' ||
    k.asymmetricKeyType !== 'ec' ||
    k.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new SluiceError('ERR_INVALID_ARG', `${what} must be a P-256 (prime256v1) private key`);
  }
  return k;
}

/** Reads a PKCS#8 PEM key file; one that group or others may read is refused. */
function readKeyFile(path: string): KeyObject {
  let text: string;
  try {
    const info = lstatSync(path);
    if (!info.isFile()) {
      throw new SluiceError('ERR_INSECURE_FILE', `the key file ${path} is not a regular file`, {
        path,
      });
    }
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      throw new SluiceError(
        'ERR_INSECURE_FILE',
        `the key file ${path} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); run \`chmod 600\` on it`,
        { path },
      );
    }
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (isSluiceError(e)) throw e;
    throw new SluiceError('ERR_IO', `cannot read the key file ${path}`, { cause: e, path });
  }
  return toP256Key(text, `the key file ${path}`);
}

function publicKeyHexOf(privateKey: KeyObject): string {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x ?? '', 'base64url'),
    Buffer.from(jwk.y ?? '', 'base64url'),
  ]).toString('hex');
}

function parcelAddressOf(publicKeyHex: string): string {
  return createHash('sha256')
    .update(Buffer.from(publicKeyHex, 'hex'))
    .digest()
    .subarray(0, 20)
    .toString('hex');
}
