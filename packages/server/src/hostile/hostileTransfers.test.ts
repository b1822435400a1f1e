// Hostile-input suite (docs/SECURITY.md): the transfer level — Range headers with overlong
// numbers, uploads the client abandons, and clients that send or read too slowly — against the
// real server on loopback.
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startServer } from '../test-helpers.js';
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
    expect(await h.server.store.resources.get('models', 'aborted.bin')).toBeUndefined();
    expect(await filesUnder(join(h.dataDir, 'blobs', '.tmp'))).toEqual([]);
  });
});

/** Short enough for a test: checked within a few hundred ms. */
const SHORT = {
  headersMs: 400,
  idleMs: 400,
  bodyGraceMs: 200,
  bodyMinBytesPerSecond: 1000,
};

interface Trickled {
  /** What the server answered before it closed (may be empty). */
  answer: string;
  /** ms from the first byte until the server closed; undefined if still open after `waitMs`. */
  closedAfter: number | undefined;
}

/**
 * Opens a connection, sends `head` (and `body`), then one byte of `trickle` every `everyMs`
 * until the server closes the connection or `waitMs` pass.
 */
function trickle(
  url: string,
  parts: { head: string; body?: Buffer; trickle: Buffer; everyMs: number },
  waitMs = 3000,
): Promise<Trickled> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answer = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const socket = connect(Number(u.port), u.hostname, () => {
      socket.write(parts.head);
      if (parts.body !== undefined) socket.write(parts.body);
      timer = setInterval(() => {
        if (sent < parts.trickle.length) socket.write(parts.trickle.subarray(sent, ++sent));
      }, parts.everyMs);
    });
    const giveUp = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      resolve({ answer, closedAfter: undefined });
    }, waitMs);
    socket.on('data', (d: Buffer) => {
      answer += d.toString('utf8');
    });
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ answer, closedAfter: Date.now() - started });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e);
    });
  });
}

describe('slow clients', () => {
  let slow: Hostile;
  beforeAll(async () => {
    slow = await startHostile({ timeouts: SHORT, level: 'info' });
  });
  afterAll(async () => {
    await slow.close();
    await removeDir(slow.dataDir);
  });

  it('an upload body trickled below the minimum rate is cut off (408) and leaves no temp file', async () => {
    const { bytes, type } = await multipart(formOf(fieldsOf(sealed, 'slow.bin')));
    const from = slow.lines.length;
    const head =
      `POST /resources/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${slow.tokens.ResourceUploader}\r\n` +
      `Content-Type: ${type}\r\nContent-Length: ${bytes.length}\r\n\r\n`;
    // The fields and the start of the small part at once, then one byte every 50 ms (20 B/s).
    const r = await trickle(slow.url, {
      head,
      body: bytes.subarray(0, 2000),
      trickle: bytes.subarray(2000),
      everyMs: 50,
    });
    expect(r.closedAfter, 'the connection was still open after 3 s').toBeDefined();
    expect(r.closedAfter).toBeLessThan(2000);
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.answer).toContain('"code":"ERR_REQUEST_TIMEOUT"');
    const clean = await eventually(
      async () => (await filesUnder(join(slow.dataDir, 'blobs'))).length === 0,
    );
    expect(clean).toBe(true);
    // One warning for the cut, the upload's end logged as an abort: no error, no "already sent".
    const logged = slow.lines.slice(from).map((l) => JSON.parse(l));
    expect(logged.filter((l) => l.level >= 40).map((l) => l.event)).toEqual([
      'request.bodyTooSlow',
    ]);
    expect(logged.some((l) => l.event === 'request.aborted')).toBe(true);
    expect(await slow.server.store.resources.get('models', 'slow.bin')).toBeUndefined();
    await expectHealthy(slow);
  });

  it('a body sent slowly but above the minimum rate is answered, not cut off', async () => {
    const body = Buffer.from(
      JSON.stringify({ email: 'nobody@example.test', password: 'p'.repeat(2500) }),
    );
    const head =
      'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    // 25 bytes every 10 ms: about 2 500 B/s for a second, over the 1 000 B/s minimum.
    const u = new URL(slow.url);
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      let timer: NodeJS.Timeout | undefined;
      const socket = connect(Number(u.port), u.hostname, () => {
        socket.write(head);
        let at = 0;
        timer = setInterval(() => {
          socket.write(body.subarray(at, at + 25));
          at += 25;
          if (at >= body.length) clearInterval(timer);
        }, 10);
      });
      socket.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      socket.on('close', () => {
        clearInterval(timer);
        resolve(text);
      });
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('a request head trickled one header line at a time is cut off after headersMs', async () => {
    const r = await trickle(slow.url, {
      head: 'POST /login HTTP/1.1\r\nHost: x\r\n',
      trickle: Buffer.from('X-Padding: a\r\n'.repeat(100)),
      everyMs: 20,
    });
    expect(r.closedAfter, 'the connection was still open after 3 s').toBeDefined();
    expect(r.closedAfter).toBeLessThan(1500);
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
    await expectHealthy(slow);
  });

  it('a download the client stops reading is cut off after idleMs', async () => {
    const large = await sealRandom(24 * 1024 * 1024);
    expect((await upload(slow, 'models', formOf(fieldsOf(large, 'large.bin')))).status).toBe(201);
    const from = slow.lines.length;
    const u = new URL(slow.url);
    let received = 0;
    const socket = connect(Number(u.port), u.hostname, () => {
      socket.write(
        `GET /resources/models/large.bin/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${slow.tokens.Validator}\r\n\r\n`,
      );
    });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.once('data', (d: Buffer) => {
      received += d.length;
      socket.pause(); // and read nothing more for now
    });
    const stalled = () =>
      slow.lines.slice(from).some((l) => JSON.parse(l).event === 'response.stalled');
    expect(await eventually(stalled), 'no response.stalled within 2 s').toBe(true);
    // Reading again, the client gets what was in flight, then the end: not the whole part.
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    socket.resume();
    await closed;
    expect(received).toBeLessThan(large.big.length);
    await expectHealthy(slow);
  });
});

describe('idle keep-alive connections', () => {
  it('a kept-alive connection with no request in flight is closed after keepAliveMs', async () => {
    const s = await startServer({ timeouts: { keepAliveMs: 200 } });
    try {
      const r = await trickle(
        s.url,
        {
          head: 'GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n',
          trickle: Buffer.alloc(0),
          everyMs: 100,
        },
        4000,
      );
      expect(r.answer).toMatch(/^HTTP\/1\.1 200 /);
      // Node adds one second to the advertised keep-alive before it closes.
      expect(r.closedAfter, 'the connection was still open after 4 s').toBeDefined();
      expect(r.closedAfter).toBeLessThan(2500);
    } finally {
      await s.close();
      await removeDir(s.dataDir);
    }
  });
});
