import { publicKeyObject } from '@sluice/core';
import { type PublisherKeyInfo, SluiceError } from '@sluice/protocol';
import type { Store } from '../stores/store.js';

/** How many publisher keys one account may hold (a rotation or two, not a key per upload). */
export const MAX_PUBLISHER_KEYS = 16;

/**
 * Publisher keys: the Ed25519 keys an uploader signs manifests with. The API accepts a signed
 * upload only when its key is registered to the uploader, so a key names one account.
 */
export class PublisherKeyService {
  constructor(private readonly store: Store) {}

  /** The keys of `userId`, oldest first. */
  list(userId: string): Promise<PublisherKeyInfo[]> {
    return this.store.users.publisherKeys(userId);
  }

  /**
   * Registers `publicKey` (raw 32 bytes, standard base64) to `userId`. `added` is false when it
   * was registered to them already; ERR_CONFLICT when it is another account's or they hold the
   * most keys allowed.
   */
  async register(
    userId: string,
    publicKey: string,
  ): Promise<{ key: PublisherKeyInfo; added: boolean }> {
    checkPublicKey(publicKey);
    return this.store.transaction(async (t) => {
      if ((await t.users.get(userId)) === undefined) {
        throw new SluiceError('ERR_NOT_FOUND', 'no such user');
      }
      const keys = await t.users.publisherKeys(userId);
      const mine = keys.find((k) => k.publicKey === publicKey);
      if (mine !== undefined) return { key: { ...mine }, added: false };
      if ((await t.users.publisherKeyOwner(publicKey)) !== undefined) {
        throw new SluiceError(
          'ERR_CONFLICT',
          'this publisher key is registered to another account',
        );
      }
      if (keys.length >= MAX_PUBLISHER_KEYS) {
        throw new SluiceError(
          'ERR_CONFLICT',
          `an account holds at most ${MAX_PUBLISHER_KEYS} publisher keys`,
        );
      }
      const key = { publicKey, addedAt: new Date().toISOString() };
      await t.users.addPublisherKey(userId, key);
      return { key: { ...key }, added: true };
    });
  }

  /** Whether `publicKey` is registered to `userId`. */
  async isRegistered(userId: string, publicKey: string): Promise<boolean> {
    return (await this.store.users.publisherKeyOwner(publicKey)) === userId;
  }
}

function checkPublicKey(publicKey: string): void {
  try {
    publicKeyObject(publicKey);
  } catch {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      'publicKey must be an Ed25519 public key: 32 bytes in standard base64',
    );
  }
}
