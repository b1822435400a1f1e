import { SluiceError, type User } from '@sluice/protocol';
import type { ScryptParams } from '../auth/passwordHash.js';
import { publicUser } from '../auth/publicUser.js';
import { MetadataStore } from '../stores/metadataStore.js';
import { createUser } from './service.js';

/**
 * Creates the first ApiAdmin in `dataDir` (there is no default account or password). Refuses with
 * ERR_CONFLICT when an ApiAdmin already exists: later admins are created through `POST /users`.
 * Fails while a server holds the data directory (its lock): the server owns the metadata file.
 */
export async function initAdmin(
  dataDir: string,
  email: string,
  password: string,
  options: { scrypt?: ScryptParams } = {},
): Promise<User> {
  const store = await MetadataStore.open(dataDir);
  try {
    const user = await createUser(
      store,
      { email, password, role: 'ApiAdmin' },
      {
        scrypt: options.scrypt,
        precondition: (draft) => {
          if (Object.values(draft.users).some((u) => u.role === 'ApiAdmin')) {
            throw new SluiceError(
              'ERR_CONFLICT',
              'an ApiAdmin already exists in this data directory',
            );
          }
        },
      },
    );
    return publicUser(user);
  } finally {
    await store.close();
  }
}
