import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { UserRecord } from '../stores/records.js';

const MiB = 1024 * 1024;

export interface EnvelopeCacheOptions {
  /** How long a verified (user, password, device) stays usable, from its verification. */
  ttlMs?: number;
  /** Most (user, device) entries kept; the least recently used go first. */
  maxDevices?: number;
  /** Most bytes of small parts kept; the least recently used go first. */
  maxSmallBytes?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** 10 minutes, 10 000 devices, 64 MiB of small parts (docs/API.md, "Envelope cache"). */
export const DEFAULT_ENVELOPE_CACHE: Readonly<Required<Omit<EnvelopeCacheOptions, 'now'>>> =
  Object.freeze({ ttlMs: 10 * 60 * 1000, maxDevices: 10_000, maxSmallBytes: 64 * MiB });

interface DeviceEntry {
  /** HMAC of everything the verification depended on, password included. */
  tag: Buffer;
  /** The envelope key scrypt derived for this email, password and hardware. */
  key: Buffer;
  expiresAt: number;
}

interface SmallEntry {
  bytes: Buffer;
  expiresAt: number;
}

/**
 * What `POST /resources/get/{folder}` may skip once a request was verified in full: the two
 * scrypt runs (password check and envelope KDF) per (user, device), and reading the small part.
 * An entry is only used when the same password comes back while the user record still has the
 * hash, email and role it was verified against, is enabled and is bound to that device; the
 * password itself is never kept, only an HMAC under a key drawn per process.
 */
export class EnvelopeCache {
  private readonly hmacKey = randomBytes(32);
  private readonly devices = new Map<string, DeviceEntry>();
  private readonly smalls = new Map<string, SmallEntry>();
  /** Full verifications running now, by tag: the same request arriving meanwhile waits. */
  private readonly running = new Map<string, Promise<void>>();
  private smallBytes = 0;
  private readonly ttlMs: number;
  private readonly maxDevices: number;
  private readonly maxSmallBytes: number;
  private readonly now: () => number;

  constructor(options: EnvelopeCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_ENVELOPE_CACHE.ttlMs;
    this.maxDevices = options.maxDevices ?? DEFAULT_ENVELOPE_CACHE.maxDevices;
    this.maxSmallBytes = options.maxSmallBytes ?? DEFAULT_ENVELOPE_CACHE.maxSmallBytes;
    this.now = options.now ?? Date.now;
    for (const [name, v] of [
      ['ttlMs', this.ttlMs],
      ['maxDevices', this.maxDevices],
      ['maxSmallBytes', this.maxSmallBytes],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new RangeError(`${name} must be a non-negative integer`);
      }
    }
  }

  private tagOf(user: UserRecord, password: string, hardware: string): Buffer {
    // JSON of an array: no choice of field values can make two different tuples collide.
    const fields = [user.id, user.email, user.role, user.passwordHash, hardware, password];
    return createHmac('sha256', this.hmacKey).update(JSON.stringify(fields), 'utf8').digest();
  }

  /**
   * A copy of the envelope key remembered for this user, password and device, or undefined when
   * there is none, it expired, or anything it was verified against changed.
   */
  envelopeKey(user: UserRecord, password: string, hardware: string): Buffer | undefined {
    if (user.disabled || user.boundHardwareHash !== hardware) return undefined;
    const id = deviceId(user.id, hardware);
    const entry = this.devices.get(id);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.dropDevice(id, entry);
      return undefined;
    }
    if (!timingSafeEqual(entry.tag, this.tagOf(user, password, hardware))) return undefined;
    this.devices.delete(id);
    this.devices.set(id, entry);
    return Buffer.from(entry.key);
  }

  /**
   * Remembers `key` after `password` was verified against `user` (the record as it was checked)
   * and the device bound: until the TTL, the same request skips both scrypt runs.
   */
  rememberKey(user: UserRecord, password: string, hardware: string, key: Buffer): void {
    if (this.ttlMs === 0 || this.maxDevices === 0) return;
    this.sweep();
    const id = deviceId(user.id, hardware);
    const old = this.devices.get(id);
    if (old !== undefined) this.dropDevice(id, old);
    this.devices.set(id, {
      tag: this.tagOf(user, password, hardware),
      key: Buffer.from(key),
      expiresAt: this.now() + this.ttlMs,
    });
    while (this.devices.size > this.maxDevices) {
      const [oldestId, oldest] = this.devices.entries().next().value as [string, DeviceEntry];
      this.dropDevice(oldestId, oldest);
    }
  }

  /**
   * Called on a miss. The first request for a (user record, password, device) runs the full
   * verification and calls `done` after `rememberKey` (or on failure); one arriving meanwhile
   * gets `wait` and looks again once it settles, so a burst from one device (a batch load) pays
   * for one scrypt pair instead of one per request.
   */
  verifying(
    user: UserRecord,
    password: string,
    hardware: string,
  ): { wait: Promise<void> | undefined; done: () => void } {
    const id = this.tagOf(user, password, hardware).toString('base64');
    const wait = this.running.get(id);
    if (wait !== undefined) return { wait, done: () => {} };
    let settle = () => {};
    const turn = new Promise<void>((resolve) => {
      settle = resolve;
    });
    this.running.set(id, turn);
    return {
      wait: undefined,
      done: () => {
        if (this.running.get(id) === turn) this.running.delete(id);
        settle();
      },
    };
  }

  /** Small part `blobId` (immutable once stored) from memory, or read and kept. */
  async smallPart(blobId: string, read: () => Promise<Buffer>): Promise<Buffer> {
    const entry = this.smalls.get(blobId);
    if (entry !== undefined && this.now() < entry.expiresAt) {
      this.smalls.delete(blobId);
      this.smalls.set(blobId, entry);
      return entry.bytes;
    }
    if (entry !== undefined) this.forgetSmall(blobId);
    const bytes = await read();
    // One part may take at most a quarter of the budget, so a few big ones cannot churn it.
    if (this.ttlMs > 0 && bytes.length <= this.maxSmallBytes / 4 && !this.smalls.has(blobId)) {
      this.smalls.set(blobId, { bytes, expiresAt: this.now() + this.ttlMs });
      this.smallBytes += bytes.length;
      while (this.smallBytes > this.maxSmallBytes) {
        const [oldest] = this.smalls.keys();
        if (oldest === undefined) break;
        this.forgetSmall(oldest);
      }
    }
    return bytes;
  }

  /** Drops expired entries (and wipes their keys); cheap next to the scrypt run it follows. */
  sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.devices) if (now >= entry.expiresAt) this.dropDevice(id, entry);
    for (const [id, entry] of this.smalls) if (now >= entry.expiresAt) this.forgetSmall(id);
  }

  /** Drops (and wipes) every envelope key of `userId`: its password changed. */
  forgetUser(userId: string): void {
    const prefix = deviceId(userId, '');
    for (const [id, entry] of this.devices) if (id.startsWith(prefix)) this.dropDevice(id, entry);
  }

  /** How many (user, device) entries `userId` has now, expired ones included. */
  devicesOf(userId: string): number {
    const prefix = deviceId(userId, '');
    return [...this.devices.keys()].filter((id) => id.startsWith(prefix)).length;
  }

  /** Drops a small part (its resource was deleted). */
  forgetSmall(blobId: string): void {
    const entry = this.smalls.get(blobId);
    if (entry === undefined) return;
    this.smalls.delete(blobId);
    this.smallBytes -= entry.bytes.length;
  }

  /** Entries and bytes held now (expired ones included until they are next looked at). */
  get size(): { devices: number; smallParts: number; smallBytes: number } {
    return {
      devices: this.devices.size,
      smallParts: this.smalls.size,
      smallBytes: this.smallBytes,
    };
  }

  /** Forgets everything and wipes the keys. */
  clear(): void {
    for (const [id, entry] of this.devices) this.dropDevice(id, entry);
    this.smalls.clear();
    this.smallBytes = 0;
  }

  private dropDevice(id: string, entry: DeviceEntry): void {
    entry.key.fill(0);
    this.devices.delete(id);
  }
}

/** The server's envelope cache: swept every minute, emptied (keys wiped) when `app` closes. */
export function openEnvelopeCache(app: FastifyInstance): EnvelopeCache {
  const cache = new EnvelopeCache();
  const sweeper = setInterval(() => cache.sweep(), 60_000);
  sweeper.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    cache.clear();
  });
  return cache;
}

function deviceId(userId: string, hardware: string): string {
  return `${userId}\n${hardware}`;
}
