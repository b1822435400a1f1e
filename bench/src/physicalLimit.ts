// What this machine allows a pull at best: its measured AES-256-CBC decryption, SHA-256 and
// loopback-copy rates (one core each), and the pull time those three floors give for a size.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { decryptChunk, sha256 } from '@sluice/core';

export interface PhysicalLimit {
  /** MB/s (10^6 bytes) of one thread. */
  aesDecryptMBps: number;
  sha256MBps: number;
  /** Bytes a socket receives over loopback straight into one reused buffer. */
  loopbackMBps: number;
  /** Seconds for `bytes` when one core does all three in turn. */
  bestSecondsOneCore: number;
  /** Seconds for `bytes` when the work spreads over `cores` cores (the floor of a pull). */
  bestSeconds: number;
  cores: number;
}

const SAMPLE = 256 << 20;
const PIECE = 8 << 20;

async function rate(bytes: number, fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up: first-touch page faults, code paths
  const t0 = performance.now();
  await fn();
  return bytes / ((performance.now() - t0) / 1000) / 1e6;
}

async function aesRate(): Promise<number> {
  const ct = randomBytes(PIECE);
  const out = Buffer.allocUnsafe(PIECE);
  const key = randomBytes(32);
  const iv = randomBytes(16);
  return rate(SAMPLE, async () => {
    for (let at = 0; at < SAMPLE; at += PIECE) await decryptChunk(ct, iv, key, out);
  });
}

async function shaRate(): Promise<number> {
  const data = randomBytes(PIECE);
  return rate(SAMPLE, async () => {
    for (let at = 0; at < SAMPLE; at += PIECE) await sha256(data);
  });
}

/** A loopback server writing `SAMPLE` bytes; the client reads them into one reused buffer. */
async function loopbackRate(): Promise<number> {
  const piece = randomBytes(PIECE);
  const server: Server = createServer((socket) => {
    let left = SAMPLE;
    const more = () => {
      while (left > 0) {
        left -= PIECE;
        if (!socket.write(piece)) return void socket.once('drain', more);
      }
      socket.end();
    };
    more();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const into = Buffer.allocUnsafe(1 << 20);
  const once = () =>
    new Promise<void>((resolve, reject) => {
      let got = 0;
      const socket = connect({
        port,
        host: '127.0.0.1',
        onread: {
          buffer: into,
          callback: (n) => {
            got += n;
            return true;
          },
        },
      });
      socket.on('error', reject);
      socket.on('close', () => (got === SAMPLE ? resolve() : reject(new Error(`got ${got}`))));
    });
  try {
    return await rate(SAMPLE, once);
  } finally {
    server.close();
  }
}

/** Measures the three rates and the best pull time of `bytes` they allow on `cores` cores. */
export async function physicalLimit(bytes: number, cores: number): Promise<PhysicalLimit> {
  const aesDecryptMBps = Math.round(await aesRate());
  const sha256MBps = Math.round(await shaRate());
  const loopbackMBps = Math.round(await loopbackRate());
  const perByte = 1 / aesDecryptMBps + 1 / sha256MBps + 1 / loopbackMBps;
  const oneCore = (bytes / 1e6) * perByte;
  const slowest = bytes / 1e6 / Math.min(aesDecryptMBps, sha256MBps, loopbackMBps);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    aesDecryptMBps,
    sha256MBps,
    loopbackMBps,
    bestSecondsOneCore: round(oneCore),
    // Spread over the cores, but never faster than the slowest single stage.
    bestSeconds: round(Math.max(oneCore / cores, slowest)),
    cores,
  };
}
