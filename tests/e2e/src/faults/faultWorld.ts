// What every fault test shares: a real API on loopback with one pushed resource, sessions that
// go through a FaultProxy, and the two checks each fault ends with (a complete verified file or a
// typed error with nothing at the destination; the server still serves a normal pull).
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PullOptions, pull, push, Session } from '@sluice/core';
import { expect } from 'vitest';
import {
  type ApiServer,
  createUserViaApi,
  DEVICE_USER,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  type StartOptions,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from '../apiServer.js';
import { FaultProxy } from './faultProxy.js';

export { onCleanup, rejection };

/** Big-part chunk size of the fault tests: small, so a few MiB make many chunks. */
export const CHUNK = 256 * 1024;
export const HW = sha('fault-injection device');

export interface World {
  api: ApiServer;
  /** Scratch directory; holds `src.bin` (the pushed plaintext). */
  work: string;
  plain: Buffer;
  uploader: Session;
}

/** A server with an uploader, a device user and `size` random bytes pushed as models/m.bin. */
export async function pushedWorld(size: number, options: StartOptions = {}): Promise<World> {
  const api = await startForTest(options);
  const work = await tempDir('sluice-faults-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const plain = randomBytes(size);
  await writeFile(join(work, 'src.bin'), plain);
  const uploader = await signedIn(api, UPLOADER);
  await push(uploader, 'models', 'm.bin', join(work, 'src.bin'), {
    chunkSize: CHUNK,
  });
  return { api, work, plain, uploader };
}

/** A proxy in front of `target`, closed after the test. */
export async function proxyFor(target: string): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(target);
  onCleanup(() => proxy.close());
  return proxy;
}

/** A session of `email` (PASSWORD) against `url` (e.g. a proxy), signed in. */
export async function sessionAt(
  url: string,
  email = DEVICE_USER,
  options: { threshold?: number } = {},
): Promise<Session> {
  const s = new Session({
    apiUrl: url,
    retryBaseMs: 50,
    ...(options.threshold === undefined ? {} : { authExpiryThreshold: options.threshold }),
  });
  s.setCredentials(email, PASSWORD);
  await s.login();
  return s;
}

/** Pulls models/m.bin as the device into `to`. */
export function pullModel(
  session: Session,
  to: string,
  options: Partial<PullOptions> = {},
): ReturnType<typeof pull> {
  return pull(session, 'models', 'm.bin', {
    to,
    password: PASSWORD,
    hardware: HW,
    ...options,
  });
}

export async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** The file at `path` is the complete plaintext. */
export async function expectVerified(path: string, plain: Buffer): Promise<void> {
  expect(sha(await readFile(path))).toBe(sha(plain));
}

/**
 * The server still answers a normal request: a fresh device session straight to the API pulls
 * the resource into memory and it verifies.
 */
export async function expectServes(api: ApiServer, plain: Buffer): Promise<void> {
  const device = await sessionAt(api.url);
  const got = await pull(device, 'models', 'm.bin', {
    to: 'buffer',
    password: PASSWORD,
    hardware: HW,
  });
  expect(sha(got.data)).toBe(sha(plain));
}

/** The big part (ciphertext) of models/m.bin as the API serves it. */
export async function bigPart(api: ApiServer): Promise<Buffer> {
  const s = await sessionAt(api.url, UPLOADER);
  const res = (await s.request('GET', '/resources/models/m.bin/big', { raw: true })) as Response;
  return Buffer.from(await res.arrayBuffer());
}

/** Big-part GETs in the proxy log. */
export function bigGets(proxy: FaultProxy) {
  return proxy.requests('GET', '/big');
}

/** A promise the test resolves, e.g. to let requests held at a proxy go. */
export function gate(): { open: () => void; opened: Promise<void> } {
  let open = () => {};
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}
