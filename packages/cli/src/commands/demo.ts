import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backend,
  hardwareHash,
  isSluiceError,
  loadBigSmallResource,
  Session,
  SluiceError,
  sha256File,
  uploadBigSmallResource,
} from '@sluice/core';
import { type Command, EXIT } from '../command.js';
import { type DemoServer, startDemoServer } from '../demoServer.js';
import { formatSize, MiB, mbPerSec, parseSize } from '../units.js';

interface Step {
  step: string;
  ms: number;
  detail: string;
  mbPerSec?: number;
}

const FOLDER = 'demo';
const NAME = 'model.bin';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the whole system on this machine: server, push, device pull, wrong device refused',
  usage: '[--size 512MiB] [--keep] [--dir DIR] [--json]',
  help: [
    '  --size SIZE  pseudo-model size (KiB, MiB, GiB); default 512MiB',
    '  --keep       keep the work directory (server data, model, pulled copy) and print its path',
    '  --dir DIR    create the work directory under DIR (default the OS temp directory)',
    '  --json       print one JSON object with every step instead of the step lines',
    '',
    'Starts the embedded server in-process on a free loopback port with a fresh data directory,',
    'creates an admin, an uploader and a device user, pushes a generated model as the uploader,',
    "pulls it as the device user bound to this machine's hardware hash, checks the SHA-256, and",
    'shows a second device refused (403 ERR_DEVICE_NOT_BOUND) and a tampered big part refused',
    '(ERR_CHUNK_DIGEST). Exit 0 only if every step held.',
  ],
  options: {
    size: { type: 'string' },
    keep: { type: 'boolean' },
    dir: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const size = parseSize(String(values.size ?? '512MiB'));
    const dir = await mkdtemp(
      join(typeof values.dir === 'string' ? values.dir : tmpdir(), 'sluice-demo-'),
    );
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    const signal = controller.signal;
    const steps: Step[] = [];
    const say = (s: Step) => {
      steps.push(s);
      if (!values.json) {
        const rate = s.mbPerSec === undefined ? '' : `  ${s.mbPerSec.toFixed(0)} MB/s`;
        io.out(`${s.step.padEnd(14)} ${String(s.ms).padStart(6)} ms  ${s.detail}${rate}`);
      }
    };
    const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
      const t0 = performance.now();
      const r = await fn();
      return [r, Math.round(performance.now() - t0)];
    };
    let server: DemoServer | undefined;
    const t0 = performance.now();
    try {
      const b = backend();
      if (!values.json) {
        io.out(`sluice demo: ${formatSize(size)} pseudo-model, ${b.kind} crypto (${b.reason})`);
      }
      const model = join(dir, NAME);
      const [sourceDigest, genMs] = await timed(() => writePseudoModel(model, size, signal));
      say({
        step: 'generate',
        ms: genMs,
        detail: `${formatSize(size)} pseudo-model, SHA-256 ${sourceDigest.slice(0, 16)}…`,
        mbPerSec: mbPerSec(size, genMs),
      });

      const dataDir = join(dir, 'server-data');
      const adminEmail = 'admin@demo.sluice';
      const adminPassword = secret();
      const [started, serverMs] = await timed(() =>
        startDemoServer({ dataDir, adminEmail, adminPassword }),
      );
      server = started;
      const url = started.url;
      say({
        step: 'server',
        ms: serverMs,
        detail: `embedded server on ${url} (own thread), ApiAdmin created`,
      });

      const uploader = { email: 'uploader@demo.sluice', password: secret() };
      const device = { email: 'device@demo.sluice', password: secret() };
      const [, usersMs] = await timed(async () => {
        const admin = await loggedIn(url, adminEmail, adminPassword, signal);
        for (const [u, role] of [
          [uploader, 'ResourceUploader'],
          [device, 'Operator'],
        ] as const) {
          await admin.request('POST', '/users', { json: { ...u, role }, signal });
        }
        await admin.logout(signal);
      });
      say({
        step: 'users',
        ms: usersMs,
        detail: `${uploader.email} (ResourceUploader), ${device.email} (Operator) via POST /users`,
      });

      const [created, pushMs] = await timed(async () => {
        const session = await loggedIn(url, uploader.email, uploader.password, signal);
        return uploadBigSmallResource(session, model, NAME, FOLDER, { tempDir: dir, signal });
      });
      say({
        step: 'push',
        ms: pushMs,
        detail: `sealed with a fresh data key, uploaded as ${created.folder}/${created.name} v${created.version}`,
        mbPerSec: mbPerSec(size, pushMs),
      });

      const hardware = await hardwareHash();
      const deviceSession = await loggedIn(url, device.email, device.password, signal);
      const out = join(dir, 'pulled.bin');
      const [pulled, pullMs] = await timed(() =>
        loadBigSmallResource(deviceSession, NAME, FOLDER, {
          to: out,
          password: device.password,
          hardware,
          signal,
        }),
      );
      say({
        step: 'pull',
        ms: pullMs,
        detail: `device ${hardware.slice(0, 12)}… bound on first pull, envelope opened, ${formatSize(pulled.size)} verified chunk by chunk and decrypted`,
        mbPerSec: mbPerSec(pulled.size, pullMs),
      });

      const [outDigest, verifyMs] = await timed(async () =>
        (await sha256File(out)).toString('hex'),
      );
      if (outDigest !== sourceDigest || pulled.size !== size) {
        throw new SluiceError('ERR_BAD_DECRYPT', 'demo: the pulled model differs from the source');
      }
      say({
        step: 'verify',
        ms: verifyMs,
        detail: 'SHA-256 of the pulled plaintext equals the source',
        mbPerSec: mbPerSec(size, verifyMs),
      });

      const otherDevice = randomBytes(32).toString('hex');
      const refusedPath = join(dir, 'refused.bin');
      const [refusal, refusedMs] = await timed(() =>
        loadBigSmallResource(deviceSession, NAME, FOLDER, {
          to: refusedPath,
          password: device.password,
          hardware: otherDevice,
          signal,
        }).then(
          () => undefined,
          (e: unknown) => e,
        ),
      );
      if (!isSluiceError(refusal, 'ERR_DEVICE_NOT_BOUND') || existsSync(refusedPath)) {
        throw new SluiceError(
          'ERR_FORBIDDEN',
          `demo: a second device was not refused as it should be (${describe(refusal)})`,
        );
      }
      say({
        step: 'second device',
        ms: refusedMs,
        detail: `device ${otherDevice.slice(0, 12)}… refused: 403 ERR_DEVICE_NOT_BOUND, nothing written`,
      });

      // The big part as the CDN stores it, one byte flipped: the chunk digest must catch it.
      const tamperedPath = join(dir, 'tampered.bin');
      const [tamperError, tamperMs] = await timed(async () => {
        await started.tamperBigPart(FOLDER, NAME);
        return loadBigSmallResource(deviceSession, NAME, FOLDER, {
          to: tamperedPath,
          password: device.password,
          hardware,
          signal,
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
      });
      if (!isSluiceError(tamperError, 'ERR_CHUNK_DIGEST') || existsSync(tamperedPath)) {
        throw new SluiceError(
          'ERR_CHUNK_DIGEST',
          `demo: a tampered big part was not refused as it should be (${describe(tamperError)})`,
        );
      }
      say({
        step: 'tampered CDN',
        ms: tamperMs,
        detail: 'one flipped byte in the stored big part → ERR_CHUNK_DIGEST, nothing written',
      });

      const totalMs = Math.round(performance.now() - t0);
      if (values.json) {
        io.out(JSON.stringify({ ok: true, sizeBytes: size, backend: b, url, steps, totalMs, dir }));
      } else {
        if (values.keep) io.out(`kept ${dir}`);
        io.out(`demo: ok (${(totalMs / 1000).toFixed(1)} s)`);
      }
      return EXIT.ok;
    } finally {
      process.off('SIGINT', onSignal);
      await server?.close();
      if (!values.keep) await rm(dir, { recursive: true, force: true });
    }
  },
};

function secret(): string {
  return randomBytes(24).toString('base64url');
}

async function loggedIn(
  url: string,
  email: string,
  password: string,
  signal: AbortSignal,
): Promise<Session> {
  const session = new Session({ apiUrl: url });
  session.setCredentials(email, password);
  await session.login(signal);
  return session;
}

function describe(e: unknown): string {
  if (e === undefined) return 'the pull succeeded';
  if (isSluiceError(e)) return `${e.code}: ${e.message}`;
  return String(e);
}

/**
 * Random-looking bytes, as real weights are (AES gains nothing from repetition): an AES-256-CTR
 * keystream under a throwaway key, hashed as it is written. Returns the hex SHA-256.
 */
async function writePseudoModel(path: string, size: number, signal: AbortSignal): Promise<string> {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(8 * MiB);
  const hash = createHash('sha256');
  const fh = await open(path, 'wx', 0o600);
  try {
    for (let done = 0; done < size; ) {
      signal.throwIfAborted();
      const n = Math.min(zeros.length, size - done);
      const block = cipher.update(zeros.subarray(0, n));
      hash.update(block);
      let written = 0;
      while (written < block.length) {
        written += (await fh.write(block, written, block.length - written)).bytesWritten;
      }
      done += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
