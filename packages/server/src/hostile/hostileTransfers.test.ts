// Hostile-input suite (docs/SECURITY.md): the transfer level — Range headers with overlong
// numbers, uploads the client abandons, and clients that send or read too slowly — against the
// real server on loopback.
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeDir } from '../test-helpers.js';
import {
  expectHealthy,
  fieldsOf,
  filesUnder,
  formOf,
  type Hostile,
  multipart,
  type Sealed,
  sealRandom,
  startHostile,
  upload,
} from './test-hostile.js';

let h: Hostile;
let sealed: Sealed;
beforeAll(async () => {
  h = await startHostile();
  sealed = await sealRandom(40_000);
  expect((await upload(h, 'models', formOf(fieldsOf(sealed, 'r.bin')))).status).toBe(201);
});
afterAll(async () => {
  await h.close();
  await removeDir(h.dataDir);
});
afterEach(async () => {
  await expectHealthy(h);
});

/** `GET …/big` of the uploaded resource with `range`: status, Content-Range and the bytes. */
async function ranged(range: string) {
  const res = await fetch(`${h.url}/resources/models/r.bin/big`, {
    headers: { authorization: `Bearer ${h.tokens.Validator}`, range },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, contentRange: res.headers.get('content-range'), bytes };
}

describe('Range headers with long numbers (RFC 9110 §14.1.2)', () => {
  it('a last-byte-pos of more than 16 digits means "to the end" (206); an overlong first-byte-pos is 416', async () => {
    const big = sealed.big;
    const size = big.length;
    const huge = '9'.repeat(20);
    const toEnd = await ranged(`bytes=5-${huge}`);
    expect({ status: toEnd.status, range: toEnd.contentRange }).toEqual({
      status: 206,
      range: `bytes 5-${size - 1}/${size}`,
    });
    expect(toEnd.bytes.equals(big.subarray(5))).toBe(true);
    // Leading zeros are digits too: 20 of them still name byte 9.
    const padded = await ranged(`bytes=0-${'9'.padStart(20, '0')}`);
    expect({ status: padded.status, range: padded.contentRange }).toEqual({
      status: 206,
      range: `bytes 0-9/${size}`,
    });
    expect(padded.bytes.equals(big.subarray(0, 10))).toBe(true);
    // A suffix longer than the part is the whole part.
    const suffix = await ranged(`bytes=-${huge}`);
    expect({ status: suffix.status, range: suffix.contentRange }).toEqual({
      status: 206,
      range: `bytes 0-${size - 1}/${size}`,
    });
    for (const header of [`bytes=${huge}-`, `bytes=${huge}-${huge}`]) {
      const r = await ranged(header);
      expect({ status: r.status, range: r.contentRange }, header).toEqual({
        status: 416,
        range: `bytes */${size}`,
      });
    }
  });
});

/** Sends `head` and `body` on a raw socket, then drops the connection. */
function sendAndDrop(head: string, body: Buffer): Promise<void> {
  const u = new URL(h.url);
  return new Promise<void>((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => {
      socket.write(head);
      socket.write(body, () => {
        setTimeout(() => socket.destroy(), 100);
      });
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

/** The JSON log lines written since `from` (an index into `h.lines`). */
function logSince(from: number): { level: number; event?: string; msg?: string; err?: unknown }[] {
  return h.lines.slice(from).map((line) => JSON.parse(line));
}

/** Until `fn` holds or two seconds pass. */
async function eventually(fn: () => boolean | Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (await fn()) return true;
    await sleep(50);
  }
  return fn();
}

describe('uploads the client abandons', () => {
  it('an upload the client aborts is logged at info as request.aborted, with no error line or stack', async () => {
    const { bytes, type } = await multipart(formOf(fieldsOf(sealed, 'aborted.bin')));
    const from = h.lines.length;
    const head =
      `POST /resources/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.tokens.ResourceUploader}\r\n` +
      `Content-Type: ${type}\r\nContent-Length: ${bytes.length}\r\n\r\n`;
    await sendAndDrop(head, bytes.subarray(0, bytes.length - 5000));
    const logged = await eventually(() =>
      logSince(from).some((l) => l.event === 'request.aborted'),
    );
    const lines = logSince(from);
    expect(logged, JSON.stringify(lines)).toBe(true);
    expect(lines.find((l) => l.event === 'request.aborted')?.level).toBe(30);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    // (Fastify's own trace lines may hold stacks; nothing at info or above does.)
    expect(JSON.stringify(lines.filter((l) => l.level >= 30))).not.toContain('"stack"');
    expect(h.server.store.getResource('models', 'aborted.bin')).toBeUndefined();
    expect(await filesUnder(join(h.dataDir, 'blobs', '.tmp'))).toEqual([]);
  });
});
