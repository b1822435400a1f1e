import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import {
  type ParcelMetadataResponse,
  type ParcelOwnerResponse,
  type ParcelPutResponse,
  SluiceError,
} from '@sluice/protocol';
import { sha256File } from '../crypto/cryptoBackend.js';
import { Session } from '../http/session.js';
import { throwIfAborted } from '../platform/abort.js';
import { badResponse } from './parcelErrors.js';
import { checkId, isParcelHex, ParcelKey } from './parcelKey.js';
import { Digest, receive, spooled } from './parcelTransfers.js';
import { SignedRequests } from './signedRequests.js';

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

/** What `inspect(id, 'metadata')` returns; `sha256` is the content's, in lowercase hex. */
export type ParcelMetadata = ParcelMetadataResponse;

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
  private readonly key: ParcelKey;
  private readonly requests: SignedRequests;

  constructor(options: ParcelClientOptions) {
    if ((options.privateKey === undefined) === (options.keyFile === undefined)) {
      throw new SluiceError('ERR_INVALID_ARG', 'give ParcelClient one of privateKey or keyFile');
    }
    this.key =
      options.keyFile !== undefined
        ? ParcelKey.fromFile(options.keyFile)
        : ParcelKey.from(options.privateKey as KeyObject | string, 'privateKey');
    const session = new Session({
      apiUrl: options.baseUrl,
      verifyTokens: false,
      retries: options.retries,
    });
    this.requests = new SignedRequests(session, this.key);
    this.baseUrl = session.apiUrl;
    this.publicKeyHex = this.key.publicKeyHex;
    this.address = this.key.address;
  }

  /** A new P-256 private key as PKCS#8 PEM. */
  static generateKey(): string {
    return ParcelKey.generatePem();
  }

  /**
   * Writes `pem` (a new key by default) to `path` with mode 0600, refusing to overwrite an
   * existing file. Returns the key's address.
   */
  static async writeKeyFile(path: string, pem = ParcelClient.generateKey()): Promise<string> {
    return (await ParcelKey.writeFile(path, pem)).address;
  }

  /** The parcel id of content with SHA-256 `sha256` stored by this client's key. */
  parcelId(sha256: string): string {
    return this.key.parcelId(sha256);
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
      return spooled(source, signal, (path) => this.putFile(path, signal));
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
    const path = `/api/v1/parcels/${id}`;
    const res = await this.requests.send('GET', path, { name: 'download', id }, { signal });
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
    const data = await receive(source, check, to, `parcel ${id}`, signal, verify);
    return data === undefined ? { ...meta, path: to } : { ...meta, data };
  }

  /** The public facts of any parcel (no token needed): its metadata or its owner's address. */
  inspect(id: string, key?: 'metadata', options?: ParcelSignalOptions): Promise<ParcelMetadata>;
  inspect(id: string, key: 'owner', options?: ParcelSignalOptions): Promise<ParcelOwnerResponse>;
  async inspect(
    id: string,
    key: 'metadata' | 'owner' = 'metadata',
    options: ParcelSignalOptions = {},
  ): Promise<ParcelMetadata | ParcelOwnerResponse> {
    checkId(id);
    if (key !== 'metadata' && key !== 'owner') {
      throw new SluiceError('ERR_INVALID_ARG', "inspect key must be 'metadata' or 'owner'");
    }
    const answer = await this.requests.get<
      Partial<ParcelMetadataResponse & ParcelOwnerResponse> | undefined
    >(`/api/v1/parcels/${id}?key=${key}`, options.signal);
    if (key === 'owner') {
      if (typeof answer?.owner !== 'string') throw badResponse(`inspect ${id} answered no owner`);
      return { owner: answer.owner };
    }
    const { size, sha256, createdAt } = answer ?? {};
    if (
      answer?.id !== id ||
      !Number.isSafeInteger(size) ||
      !isParcelHex(sha256) ||
      typeof createdAt !== 'string'
    ) {
      throw badResponse(`inspect ${id} answered malformed metadata`);
    }
    return { id, size: size as number, sha256, createdAt };
  }

  /** Removes parcel `id` (this key's own); afterwards it answers ERR_GONE. */
  async remove(id: string, options: ParcelSignalOptions = {}): Promise<void> {
    checkId(id);
    await this.requests.send(
      'DELETE',
      `/api/v1/parcels/${id}`,
      { name: 'remove', id },
      { signal: options.signal },
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
    const hash = (await sha256File(path, { signal })).toString('hex');
    const body = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
    return this.upload(hash, body, signal, size);
  }

  private async upload(
    hash: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    signal: AbortSignal | undefined,
    size?: number,
  ): Promise<ParcelPutResult> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (size !== undefined) headers['content-length'] = String(size);
    const operation = { name: 'upload', hash } as const;
    const res = await this.requests.send('POST', '/api/v1/parcels', operation, {
      signal,
      body,
      headers,
    });
    let answer: Partial<ParcelPutResponse>;
    try {
      answer = (await res.json()) as Partial<ParcelPutResponse>;
    } catch (e) {
      throw badResponse('the upload answer is not JSON', e);
    }
    if (answer.id !== this.parcelId(hash)) {
      throw badResponse('the server answered an upload with an id that is not this content’s');
    }
    return { id: answer.id, existed: res.status === 200 };
  }
}
