import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  hardwareHash,
  isSluiceError,
  pull,
  push,
  Session,
  SluiceError,
  type SluiceErrorCode,
  sha256File,
} from '@sluice/core';
import { formatSize, mbPerSec } from '../units.js';
import { type DemoServer, startDemoServer } from './demoServer.js';
import { writePseudoModel } from './pseudoModel.js';
import type { StepLog } from './stepLog.js';

const FOLDER = 'demo';
const NAME = 'model.bin';

/** What every step of one demo run works in. */
export interface Demo {
  /** The work directory: server data, the model, the pulled copies. */
  dir: string;
  size: number;
  signal: AbortSignal;
  log: StepLog;
  /** Set by `startServer`, closed by whoever started the demo. */
  server?: DemoServer;
}

interface Account {
  email: string;
  password: string;
}

/** The device user, logged in on this machine. */
interface Device {
  session: Session;
  account: Account;
  hardware: string;
}

/** Writes the pseudo-model; returns its hex SHA-256. */
export function generate(demo: Demo): Promise<string> {
  return demo.log.run(
    'generate',
    () => writePseudoModel(join(demo.dir, NAME), demo.size, demo.signal),
    (digest, ms) => ({
      detail: `${formatSize(demo.size)} pseudo-model, SHA-256 ${digest.slice(0, 16)}…`,
      mbPerSec: mbPerSec(demo.size, ms),
    }),
  );
}

/** Starts the embedded server with an ApiAdmin; returns the admin's account. */
export async function startServer(demo: Demo): Promise<{ url: string; admin: Account }> {
  const admin = { email: 'admin@demo.sluice', password: secret() };
  const server = await demo.log.run(
    'server',
    () =>
      startDemoServer({
        dataDir: join(demo.dir, 'server-data'),
        adminEmail: admin.email,
        adminPassword: admin.password,
      }),
    (started) => ({ detail: `embedded server on ${started.url} (own thread), ApiAdmin created` }),
  );
  demo.server = server;
  return { url: server.url, admin };
}

/** The admin creates an uploader and a device user through the API. */
export async function createUsers(
  demo: Demo,
  url: string,
  admin: Account,
): Promise<{ uploader: Account; device: Account }> {
  const uploader = { email: 'uploader@demo.sluice', password: secret() };
  const device = { email: 'device@demo.sluice', password: secret() };
  await demo.log.run(
    'users',
    async () => {
      const session = await loggedIn(url, admin, demo.signal);
      for (const [u, role] of [
        [uploader, 'ResourceUploader'],
        [device, 'Operator'],
      ] as const) {
        await session.request('POST', '/users', { json: { ...u, role }, signal: demo.signal });
      }
      await session.logout(demo.signal);
    },
    () => ({
      detail: `${uploader.email} (ResourceUploader), ${device.email} (Operator) via POST /users`,
    }),
  );
  return { uploader, device };
}

export async function pushModel(demo: Demo, url: string, uploader: Account): Promise<void> {
  const { dir, signal } = demo;
  await demo.log.run(
    'push',
    async () => {
      const session = await loggedIn(url, uploader, signal);
      return push(session, FOLDER, NAME, join(dir, NAME), {
        tempDir: dir,
        signal,
      });
    },
    (created, ms) => ({
      detail: `sealed with a fresh data key, uploaded as ${created.folder}/${created.name} v${created.version}`,
      mbPerSec: mbPerSec(demo.size, ms),
    }),
  );
}

/** The device user pulls the model, binding this machine; then its digest is checked. */
export async function pullModel(
  demo: Demo,
  url: string,
  account: Account,
  sourceDigest: string,
): Promise<Device> {
  const hardware = await hardwareHash();
  const device = { session: await loggedIn(url, account, demo.signal), account, hardware };
  const out = join(demo.dir, 'pulled.bin');
  const pulled = await demo.log.run(
    'pull',
    () => pullAs(demo, device, out, hardware),
    (r, ms) => ({
      detail: `device ${hardware.slice(0, 12)}… bound on first pull, envelope opened, ${formatSize(r.size)} verified chunk by chunk and decrypted`,
      mbPerSec: mbPerSec(r.size, ms),
    }),
  );
  await demo.log.run(
    'verify',
    async () => {
      const outDigest = (await sha256File(out)).toString('hex');
      if (outDigest !== sourceDigest || pulled.size !== demo.size) {
        throw new SluiceError('ERR_BAD_DECRYPT', 'demo: the pulled model differs from the source');
      }
    },
    (_r, ms) => ({
      detail: 'SHA-256 of the pulled plaintext equals the source',
      mbPerSec: mbPerSec(demo.size, ms),
    }),
  );
  return device;
}

/** The same user on another device is refused, and nothing is written. */
export async function secondDevice(demo: Demo, device: Device): Promise<void> {
  const otherDevice = randomBytes(32).toString('hex');
  await demo.log.run(
    'second device',
    () =>
      refused(demo, device, 'refused.bin', otherDevice, {
        code: 'ERR_DEVICE_NOT_BOUND',
        raise: 'ERR_FORBIDDEN',
        what: 'a second device',
      }),
    () => ({
      detail: `device ${otherDevice.slice(0, 12)}… refused: 403 ERR_DEVICE_NOT_BOUND, nothing written`,
    }),
  );
}

/** The big part as the CDN stores it, one byte flipped: the chunk digest must catch it. */
export async function tamperedCdn(demo: Demo, device: Device): Promise<void> {
  await demo.log.run(
    'tampered CDN',
    async () => {
      await demo.server?.tamperBigPart(FOLDER, NAME);
      await refused(demo, device, 'tampered.bin', device.hardware, {
        code: 'ERR_CHUNK_DIGEST',
        raise: 'ERR_CHUNK_DIGEST',
        what: 'a tampered big part',
      });
    },
    () => ({
      detail: 'one flipped byte in the stored big part → ERR_CHUNK_DIGEST, nothing written',
    }),
  );
}

function pullAs(demo: Demo, device: Device, to: string, hardware: string) {
  return pull(device.session, FOLDER, NAME, {
    to,
    password: device.account.password,
    hardware,
    signal: demo.signal,
  });
}

/** A pull that must fail with `expected.code` and leave no file; else `expected.raise`. */
async function refused(
  demo: Demo,
  device: Device,
  file: string,
  hardware: string,
  expected: { code: SluiceErrorCode; raise: SluiceErrorCode; what: string },
): Promise<void> {
  const to = join(demo.dir, file);
  const error = await pullAs(demo, device, to, hardware).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isSluiceError(error, expected.code) || existsSync(to)) {
    throw new SluiceError(
      expected.raise,
      `demo: ${expected.what} was not refused as it should be (${describe(error)})`,
    );
  }
}

function secret(): string {
  return randomBytes(24).toString('base64url');
}

async function loggedIn(url: string, account: Account, signal: AbortSignal): Promise<Session> {
  const session = new Session({ apiUrl: url });
  session.setCredentials(account.email, account.password);
  await session.login(signal);
  return session;
}

function describe(e: unknown): string {
  if (e === undefined) return 'the pull succeeded';
  if (isSluiceError(e)) return `${e.code}: ${e.message}`;
  return String(e);
}
