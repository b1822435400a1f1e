import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type EnvelopePayload,
  isSignedLease,
  type SignedLease,
  SluiceError,
  validateManifest,
} from '@sluice/protocol';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { deriveLeaseKey, seal, unseal } from './sealedFile.js';

/** The server and account a device's leases belong to. */
export interface LeaseAccount {
  /** The API's base URL, as the session has it. */
  server: string;
  email: string;
}

/** What a device remembers of its last contacts with the server, sealed like the leases. */
export interface LeaseState {
  /** The server's JWKS keys seen, to verify leases offline. */
  keys: { kid: string; x: string }[];
  /** The newest server time seen (ISO): a local clock behind it was rolled back. */
  newestServerTime: string;
}

/** One resource kept for offline use: its signed lease and the envelope's contents. */
export interface HeldLease {
  grant: SignedLease;
  payload: EnvelopePayload;
}

const STATE = 'state.sealed';
const LEASE_FILE = /^[0-9a-f]{32}\.lease$/;

/** `<cacheDir>/leases/<account>`: names are digests, so the disk shows no email or resource name. */
export function accountDir(cacheDir: string, account: LeaseAccount): string {
  const id = digest(`${account.server}\0${account.email.trim().toLowerCase()}`);
  return join(cacheDir, 'leases', id);
}

/** Whether the account holds a lease file for `folder/name` (no key needed). */
export async function holdsLease(
  cacheDir: string,
  account: LeaseAccount,
  folder: string,
  name: string,
): Promise<boolean> {
  const names = await readdir(accountDir(cacheDir, account)).catch((): string[] => []);
  return names.includes(leaseFile(folder, name));
}

/** Deletes every lease (and the state) the account keeps on this device. */
export async function forgetAccount(cacheDir: string, account: LeaseAccount): Promise<void> {
  await rm(accountDir(cacheDir, account), { recursive: true, force: true });
}

/**
 * The offline store of one account on this device, unlocked with the key of (password, hardware
 * hash, account, server). Files are replaced atomically, mode 0600, in a 0700 directory.
 */
export class LeaseStore {
  readonly dir: string;
  readonly #key: Buffer;

  private constructor(dir: string, key: Buffer) {
    this.dir = dir;
    this.#key = key;
  }

  static async unlock(
    cacheDir: string,
    account: LeaseAccount,
    password: string,
    hardware: string,
  ): Promise<LeaseStore> {
    const key = await deriveLeaseKey(account, password, hardware);
    return new LeaseStore(accountDir(cacheDir, account), key);
  }

  /** Zeroes the key. */
  close(): void {
    this.#key.fill(0);
  }

  /** The state, or undefined when none was kept; ERR_LEASE_LOCKED when it does not open. */
  async readState(): Promise<LeaseState | undefined> {
    const text = await this.#read(STATE);
    if (text === undefined) return undefined;
    const s = unseal(this.#key, text, STATE, join(this.dir, STATE)) as LeaseState;
    if (!Array.isArray(s.keys) || typeof s.newestServerTime !== 'string') {
      throw new SluiceError('ERR_LEASE_INVALID', `${join(this.dir, STATE)} is malformed`);
    }
    return s;
  }

  writeState(state: LeaseState): Promise<void> {
    return this.#write(STATE, seal(this.#key, state, STATE));
  }

  /** The lease kept for `folder/name`, or undefined; ERR_LEASE_LOCKED when it does not open. */
  async read(folder: string, name: string): Promise<HeldLease | undefined> {
    return this.#readLease(leaseFile(folder, name));
  }

  async write(held: HeldLease): Promise<void> {
    const { resource, manifest, dataKey, small, cdnKey } = held.payload;
    const file = leaseFile(resource.folder, resource.name);
    const value = {
      grant: held.grant,
      payload: {
        resource,
        manifest,
        dataKey: dataKey.toString('base64'),
        small: small.toString('base64'),
        cdnKey: cdnKey ?? null,
      },
    };
    await this.#write(file, seal(this.#key, value, file));
  }

  async remove(folder: string, name: string): Promise<void> {
    await rm(join(this.dir, leaseFile(folder, name)), { force: true });
  }

  /** Every lease file's name with its lease; files this key does not open are deleted. */
  async list(): Promise<{ file: string; held: HeldLease }[]> {
    const names = (await readdir(this.dir).catch((): string[] => [])).filter((n) =>
      LEASE_FILE.test(n),
    );
    const out: { file: string; held: HeldLease }[] = [];
    for (const file of names) {
      const held = await this.#readLease(file).catch(() => undefined);
      if (held === undefined) await rm(join(this.dir, file), { force: true });
      else out.push({ file, held });
    }
    return out;
  }

  async removeFile(file: string): Promise<void> {
    if (LEASE_FILE.test(file)) await rm(join(this.dir, file), { force: true });
  }

  async #readLease(file: string): Promise<HeldLease | undefined> {
    const text = await this.#read(file);
    if (text === undefined) return undefined;
    const v = unseal(this.#key, text, file, join(this.dir, file)) as {
      grant: unknown;
      payload: Record<string, unknown>;
    };
    const p = v.payload;
    if (!isSignedLease(v.grant) || typeof p?.dataKey !== 'string' || typeof p.small !== 'string') {
      throw new SluiceError('ERR_LEASE_INVALID', `${join(this.dir, file)} is malformed`);
    }
    return {
      grant: v.grant,
      payload: {
        resource: p.resource as EnvelopePayload['resource'],
        manifest: p.manifest === null ? null : validateManifest(p.manifest),
        dataKey: Buffer.from(p.dataKey, 'base64'),
        small: Buffer.from(p.small, 'base64'),
        cdnKey: typeof p.cdnKey === 'string' ? p.cdnKey : null,
      },
    };
  }

  async #read(file: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.dir, file), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SluiceError('ERR_IO', `cannot read ${join(this.dir, file)}`, { cause: e });
    }
  }

  async #write(file: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.dir, file), text, { mode: 0o600 });
  }
}

function leaseFile(folder: string, name: string): string {
  return `${digest(`${folder}\0${name}`)}.lease`;
}

function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}
