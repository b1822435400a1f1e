import { SluiceError, type User } from '@sluice/protocol';
import type { ScryptParams } from '../auth/passwordHash.js';
import { publicUser } from '../auth/publicUser.js';
import { Store } from '../stores/store.js';
import { createUser } from './service.js';

/**
 * Creates the first ApiAdmin in the store of `dataDir` (or of `databaseUrl`) (there is no default account or password). Refuses with
 * ERR_CONFLICT when an ApiAdmin already exists: later admins are created through `POST /users`.
 * With the embedded store it fails while a server holds the data directory (its lock).
 */
export async function initAdmin(
  dataDir: string,
  email: string,
  password: string,
  options: { scrypt?: ScryptParams; databaseUrl?: string } = {},
): Promise<User> {
  const store = await Store.open({ dataDir, databaseUrl: options.databaseUrl });
  try {
    const user = await createUser(
      store,
      { email, password, role: 'ApiAdmin' },
      {
        scrypt: options.scrypt,
        precondition: async (t) => {
          if (await t.users.anyWithRole('ApiAdmin')) {
            throw new SluiceError('ERR_CONFLICT', 'an ApiAdmin already exists in this store');
          }
        },
      },
    );
    return publicUser(user);
  } finally {
    await store.close();
  }
}
