import { SluiceError } from '@sluice/protocol';
import type { ParcelOperation } from './parcelTokens.js';

const ADDRESS = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** A parcel id from the path: 64 lowercase hex digits, else 400. */
export function parseParcelId(id: string): string {
  if (!HEX64.test(id)) throw new SluiceError('ERR_BAD_REQUEST', 'parcel id must be 64 hex digits');
  return id;
}

/** The `user` of a token request: the address of the key that will sign (40 hex digits). */
export function parseTokenUser(user: unknown): string {
  if (typeof user !== 'string' || !ADDRESS.test(user)) {
    throw new SluiceError('ERR_BAD_REQUEST', 'user must be an address: 40 lowercase hex digits');
  }
  return user;
}

/** `{name: 'upload', hash}` or `{name: 'download' | 'remove' | 'inspect', id}`, nothing else. */
export function parseOperation(value: unknown): ParcelOperation {
  const op = value as Record<string, unknown> | null;
  const keys = typeof op === 'object' && op !== null ? Object.keys(op).sort().join(',') : '';
  if (op?.name === 'upload') {
    if (keys === 'hash,name' && typeof op.hash === 'string' && HEX64.test(op.hash)) {
      return { name: 'upload', hash: op.hash };
    }
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      'upload needs hash: the SHA-256 of the content, 64 lowercase hex digits',
    );
  }
  if (op?.name === 'download' || op?.name === 'remove' || op?.name === 'inspect') {
    if (keys === 'id,name' && typeof op.id === 'string' && HEX64.test(op.id)) {
      return { name: op.name, id: op.id };
    }
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `${op.name} needs id: a parcel id, 64 lowercase hex digits`,
    );
  }
  throw new SluiceError(
    'ERR_BAD_REQUEST',
    'operation.name must be upload, download, remove or inspect',
  );
}
