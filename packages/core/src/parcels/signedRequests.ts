import {
  PARCEL_HEADERS,
  type ParcelTokenRequest,
  type ParcelTokenResponse,
} from '@sluice/protocol';
import { HttpError, isHttpError } from '../http/errors.js';
import type { Session } from '../http/session.js';
import { badResponse } from './parcelErrors.js';
import type { ParcelKey } from './parcelKey.js';

export type ParcelOperation = ParcelTokenRequest['operation'];

export interface SignedRequestOptions {
  signal: AbortSignal | undefined;
  body?: Uint8Array | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
}

/**
 * The parcel API's token requests: a one-time token for each operation, signed with the client's
 * key and sent once (tokens are single-use, so a signed request is never retried).
 */
export class SignedRequests {
  constructor(
    private readonly session: Session,
    private readonly key: ParcelKey,
  ) {}

  /** Asks for a token for `operation`, signs it and sends the request; resolves with the Response. */
  async send(
    method: string,
    path: string,
    operation: ParcelOperation,
    options: SignedRequestOptions,
  ): Promise<Response> {
    const token = await this.token(operation, options.signal);
    return gone(
      this.session.request(method, path, {
        auth: false,
        idempotent: false,
        raw: true,
        headers: {
          ...options.headers,
          [PARCEL_HEADERS.token]: token,
          [PARCEL_HEADERS.publicKey]: this.key.publicKeyHex,
          [PARCEL_HEADERS.signature]: this.key.signToken(token),
        },
        body: options.body,
        signal: options.signal,
      }),
    );
  }

  /** A public (token-free) GET, retried as any idempotent request. */
  get<T>(path: string, signal: AbortSignal | undefined): Promise<T> {
    return gone(this.session.request<T>('GET', path, { auth: false, signal }));
  }

  private async token(operation: ParcelOperation, signal: AbortSignal | undefined) {
    const body: ParcelTokenRequest = { user: this.key.address, operation };
    const answer = await this.session.request<Partial<ParcelTokenResponse> | undefined>(
      'POST',
      '/api/v1/auth',
      { json: body, auth: false, idempotent: true, signal },
    );
    const token = answer?.token;
    if (typeof token !== 'string') throw badResponse('the token request answered no token');
    return token;
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
        serverMessage: e.serverMessage,
        serverCode: e.serverCode,
        cause: e,
      });
    }
    throw e;
  }
}
