import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSluiceError } from '@sluice/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpRangeDriver } from './httpRangeDriver.js';

interface RangeServer {
  url: string;
  requests: number;
  maxInFlight: number;
  server: Server;
}

/**
 * A loopback file server with Range support. `hook` may answer a request itself (return true)
 * before the normal 206 path runs; it gets the parsed range and the per-range request count.
 */
async function startRangeServer(
  file: Buffer,
  options: {
    etag?: () => string | undefined;
    hook?: (req: IncomingMessage, res: ServerResponse, start: number, seen: number) => boolean;
    delayMs?: number;
  } = {},
): Promise<RangeServer> {
  const seenPerStart = new Map<number, number>();
  let inFlight = 0;
  const state = { url: '', requests: 0, maxInFlight: 0, server: undefined as unknown as Server };
  const server = createServer((req, res) => {
    state.requests++;
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const match = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = Number(match?.[1] ?? 0);
    const end = Math.min(Number(match?.[2] ?? file.length - 1), file.length - 1);
    const seen = (seenPerStart.get(start) ?? 0) + 1;
    seenPerStart.set(start, seen);
    const respond = () => {
      if (options.hook?.(req, res, start, seen)) return;
      const etag = options.etag?.();
      if (etag !== undefined) {
        const ifMatch = req.headers['if-match'];
        if (ifMatch !== undefined && ifMatch !== etag) {
          res.writeHead(412).end();
          return;
        }
        res.setHeader('etag', etag);
      }
      if (!match) {
        res.writeHead(200, { 'content-length': file.length }).end(file);
        return;
      }
      res.writeHead(206, {
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${file.length}`,
      });
      res.end(file.subarray(start, end + 1));
    };
    if (options.delayMs) setTimeout(respond, options.delayMs);
    else respond();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.server = server;
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`;
  servers.push(server);
  return state;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

// Every case runs on both receive paths: sockets read straight into the chunk's buffer, and node:http.
describe.each([
  { receive: 'sockets', socketReceive: true },
  { receive: 'node:http', socketReceive: false },
])('receiving over $receive', ({ socketReceive }) => {
  const driver = new HttpRangeDriver({ backoffMs: 5, maxBackoffMs: 50, socketReceive });

  /** Downloads into a buffer assembled from chunk indexes; records the order they arrived in. */
  async function fetchAll(
    url: string,
    size: number,
    chunkSize: number,
    extra: { concurrency?: number; signal?: AbortSignal } = {},
  ) {
    const out = Buffer.alloc(size);
    const order: number[] = [];
    await driver.download({
      url,
      size,
      chunkSize,
      ...extra,
      onChunk: async (index, data) => {
        order.push(index);
        data.copy(out, index * chunkSize);
      },
    });
    return { out, order };
  }

  describe('HttpRangeDriver', () => {
    it('reassembles the whole file from chunks that arrive in any order', async () => {
      const file = randomBytes(1_000_003);
      const srv = await startRangeServer(file, {
        // Random per-request delay so chunks complete out of order.
        hook: (_req, res, start) => {
          if (start === 0) {
            // the first chunk is slow
            const body = file.subarray(0, 65536);
            setTimeout(() => {
              res.writeHead(206, {
                'content-length': body.length,
                'content-range': `bytes 0-65535/${file.length}`,
              });
              res.end(body);
            }, 100);
            return true;
          }
          return false;
        },
      });
      const progress: number[] = [];
      const out = Buffer.alloc(file.length);
      const order: number[] = [];
      await driver.download({
        url: srv.url,
        size: file.length,
        chunkSize: 65536,
        concurrency: 4,
        onChunk: async (index, data) => {
          order.push(index);
          data.copy(out, index * 65536);
        },
        onProgress: (p) => progress.push(p.loaded),
      });
      expect(out.equals(file)).toBe(true);
      expect(order).toHaveLength(Math.ceil(file.length / 65536));
      expect(new Set(order).size).toBe(order.length);
      expect(order[0]).not.toBe(0);
      expect(progress.at(-1)).toBe(file.length);
    });

    it('never has more than `concurrency` requests in flight', async () => {
      const file = randomBytes(40 * 4096);
      const srv = await startRangeServer(file, { delayMs: 10 });
      const { out } = await fetchAll(srv.url, file.length, 4096, { concurrency: 3 });
      expect(out.equals(file)).toBe(true);
      expect(srv.maxInFlight).toBe(3);
      expect(srv.requests).toBe(40);
    });

    it('awaits onChunk before fetching more (backpressure)', async () => {
      const file = randomBytes(20 * 1024);
      const srv = await startRangeServer(file);
      let pending = 0;
      let maxPending = 0;
      await driver.download({
        url: srv.url,
        size: file.length,
        chunkSize: 1024,
        concurrency: 2,
        onChunk: async () => {
          pending++;
          maxPending = Math.max(maxPending, pending);
          await new Promise((r) => setTimeout(r, 5));
          pending--;
        },
      });
      expect(maxPending).toBeLessThanOrEqual(2);
      expect(srv.requests).toBe(20);
    });

    it('retries a chunk whose first two requests get 503', async () => {
      const file = randomBytes(10 * 1000);
      const srv = await startRangeServer(file, {
        hook: (_req, res, start, seen) => {
          if (start === 3000 && seen <= 2) {
            res.writeHead(503).end('busy');
            return true;
          }
          return false;
        },
      });
      const { out } = await fetchAll(srv.url, file.length, 1000);
      expect(out.equals(file)).toBe(true);
      expect(srv.requests).toBe(12);
    });

    it('fails with ERR_NETWORK once the retries are used up', async () => {
      const file = randomBytes(4000);
      const srv = await startRangeServer(file, {
        hook: (_req, res, start) => {
          if (start === 1000) {
            res.writeHead(500).end();
            return true;
          }
          return false;
        },
      });
      const err = await fetchAll(srv.url, file.length, 1000).catch((e: unknown) => e);
      expect(isSluiceError(err, 'ERR_NETWORK')).toBe(true);
    });

    it('recovers from a connection reset in the middle of a body', async () => {
      const file = randomBytes(8 * 50_000);
      let reset = false;
      const srv = await startRangeServer(file, {
        hook: (_req, res, start) => {
          if (start === 100_000 && !reset) {
            reset = true;
            res.writeHead(206, {
              'content-length': 50_000,
              'content-range': `bytes 100000-149999/${file.length}`,
            });
            res.write(file.subarray(100_000, 120_000), () => res.socket?.destroy());
            return true;
          }
          return false;
        },
      });
      const { out } = await fetchAll(srv.url, file.length, 50_000);
      expect(reset).toBe(true);
      expect(out.equals(file)).toBe(true);
    });

    it('cuts off a range whose body stalls (socket left open) after idleTimeoutMs and retries it', async () => {
      const file = randomBytes(8 * 50_000);
      let stalled = 0;
      const srv = await startRangeServer(file, {
        hook: (_req, res, start) => {
          if (start === 150_000 && stalled === 0) {
            stalled++;
            res.writeHead(206, {
              'content-length': 50_000,
              'content-range': `bytes 150000-199999/${file.length}`,
            });
            res.write(file.subarray(150_000, 160_000)); // then nothing, connection kept open
            return true;
          }
          return false;
        },
      });
      const quick = new HttpRangeDriver({
        backoffMs: 5,
        maxBackoffMs: 50,
        idleTimeoutMs: 300,
        socketReceive,
      });
      const out = Buffer.alloc(file.length);
      const started = Date.now();
      await quick.download({
        url: srv.url,
        size: file.length,
        chunkSize: 50_000,
        onChunk: async (index, chunk) => {
          chunk.copy(out, index * 50_000);
        },
      });
      expect(stalled).toBe(1);
      expect(out.equals(file)).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(() => new HttpRangeDriver({ idleTimeoutMs: 0 })).toThrow(/idleTimeoutMs/);
    });

    it('rejects a server that ignores Range (200)', async () => {
      const file = randomBytes(5000);
      const srv = await startRangeServer(file, {
        hook: (_req, res) => {
          res.writeHead(200, { 'content-length': file.length }).end(file);
          return true;
        },
      });
      const err = await fetchAll(srv.url, file.length, 1000).catch((e: unknown) => e);
      expect(isSluiceError(err, 'ERR_RANGE_NOT_SUPPORTED')).toBe(true);
    });

    it('rejects a wrong Content-Range', async () => {
      const file = randomBytes(5000);
      const srv = await startRangeServer(file, {
        hook: (_req, res, start) => {
          if (start !== 2000) return false;
          res.writeHead(206, { 'content-range': `bytes 0-999/${file.length}` });
          res.end(file.subarray(0, 1000));
          return true;
        },
      });
      const err = await fetchAll(srv.url, file.length, 1000).catch((e: unknown) => e);
      expect(isSluiceError(err, 'ERR_BAD_RESPONSE')).toBe(true);
    });

    it('stops promptly on abort with ERR_ABORTED and no further chunks', async () => {
      const file = randomBytes(200 * 1024);
      const srv = await startRangeServer(file, { delayMs: 20 });
      const controller = new AbortController();
      let afterAbort = 0;
      let chunks = 0;
      const started = Date.now();
      const err = await driver
        .download({
          url: srv.url,
          size: file.length,
          chunkSize: 1024,
          concurrency: 2,
          signal: controller.signal,
          onChunk: async () => {
            if (controller.signal.aborted) afterAbort++;
            if (++chunks === 3) controller.abort();
          },
        })
        .catch((e: unknown) => e);
      expect(isSluiceError(err, 'ERR_ABORTED')).toBe(true);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(afterAbort).toBe(0);
      expect(chunks).toBeLessThan(200);
    });

    it('sends If-Match and fails with ERR_SOURCE_CHANGED when the ETag changes', async () => {
      const file = randomBytes(30 * 1000);
      let served = 0;
      const ifMatch: (string | undefined)[] = [];
      const srv = await startRangeServer(file, {
        etag: () => (served++ < 10 ? '"v1"' : '"v2"'),
        hook: (req) => {
          ifMatch.push(req.headers['if-match'] as string | undefined);
          return false;
        },
      });
      const err = await fetchAll(srv.url, file.length, 1000, { concurrency: 1 }).catch(
        (e: unknown) => e,
      );
      expect(isSluiceError(err, 'ERR_SOURCE_CHANGED')).toBe(true);
      expect(ifMatch.slice(1)).toContain('"v1"');
    });

    it('accepts a constant ETag', async () => {
      const file = randomBytes(10 * 1000);
      const srv = await startRangeServer(file, { etag: () => '"same"' });
      const { out } = await fetchAll(srv.url, file.length, 1000, { concurrency: 3 });
      expect(out.equals(file)).toBe(true);
    });
  });

  describe('HttpRangeDriver skip', () => {
    it('fetches only the chunks not in `skip`, and counts the skipped ones as loaded', async () => {
      const file = randomBytes(10 * 1000 + 7);
      const srv = await startRangeServer(file);
      const got = new Map<number, Buffer>();
      const progress: number[] = [];
      await driver.download({
        url: srv.url,
        size: file.length,
        chunkSize: 1000,
        skip: new Set([0, 3, 4, 10]),
        onChunk: async (i, data) => {
          got.set(i, data);
        },
        onProgress: (p) => progress.push(p.loaded),
      });
      expect([...got.keys()].sort((a, b) => a - b)).toEqual([1, 2, 5, 6, 7, 8, 9]);
      expect(srv.requests).toBe(7);
      for (const [i, data] of got)
        expect(data.equals(file.subarray(i * 1000, i * 1000 + 1000))).toBe(true);
      expect(progress.at(-1)).toBe(file.length);
    });
  });

  describe('HttpRangeDriver authorization', () => {
    it('sends fresh headers per attempt and retries a range once after a 401 renewal', async () => {
      const file = randomBytes(4000);
      let renewals = 0;
      let token = 'stale';
      const srv = await startRangeServer(file, {
        hook: (req, res) => {
          if (req.headers.authorization === 'Bearer good') return false;
          res.writeHead(401).end();
          return true;
        },
      });
      const d = new HttpRangeDriver({
        socketReceive,
        authorize: async () => ({ authorization: `Bearer ${token}` }),
        onUnauthorized: async (sent) => {
          expect(sent.authorization).toBe('Bearer stale');
          renewals++;
          token = 'good';
          return true;
        },
      });
      const parts: Buffer[] = [];
      await d.download({
        url: srv.url,
        size: file.length,
        chunkSize: 1000,
        concurrency: 1,
        onChunk: async (i, data) => {
          parts[i] = data;
        },
      });
      expect(Buffer.concat(parts).equals(file)).toBe(true);
      expect(renewals).toBe(1);
      expect(srv.requests).toBe(5);
    });

    it('a 401 that renewal cannot fix ends the download with ERR_HTTP 401', async () => {
      const srv = await startRangeServer(randomBytes(100), {
        hook: (_req, res) => {
          res.writeHead(401).end();
          return true;
        },
      });
      const d = new HttpRangeDriver({ onUnauthorized: async () => true, socketReceive });
      const err = await d
        .download({ url: srv.url, size: 100, chunkSize: 50, onChunk: async () => {} })
        .catch((e: unknown) => e);
      expect(isSluiceError(err, 'ERR_HTTP')).toBe(true);
      expect((err as { status?: number }).status).toBe(401);
    });
  });

  describe('HttpRangeDriver reuseBuffers', () => {
    it('hands every chunk over in one reused buffer per worker, each correct while onChunk runs', async () => {
      // Chunks above Buffer's 4 KiB pool size, so each fresh buffer would have its own memory.
      const file = randomBytes(5 * 10_000 + 3);
      const srv = await startRangeServer(file);
      const copies: Buffer[] = [];
      const backing = new Set<ArrayBufferLike>();
      await driver.download({
        url: srv.url,
        size: file.length,
        chunkSize: 10_000,
        concurrency: 1,
        reuseBuffers: true,
        onChunk: async (i, data) => {
          copies[i] = Buffer.from(data);
          backing.add(data.buffer);
        },
      });
      expect(Buffer.concat(copies).equals(file)).toBe(true);
      expect(backing.size).toBe(1);
    });
  });
});

describe('receiving over sockets', () => {
  const driver = new HttpRangeDriver({ backoffMs: 5, maxBackoffMs: 50, socketReceive: true });

  it('keeps its connections alive: no more sockets than workers for many ranges', async () => {
    const file = randomBytes(64 * 1024 + 7);
    const srv = await startRangeServer(file);
    let sockets = 0;
    srv.server.on('connection', () => sockets++);
    const { out } = await fetchWith(driver, srv.url, file.length, 1024, 3);
    expect(out.equals(file)).toBe(true);
    expect(srv.requests).toBe(65);
    expect(sockets).toBeLessThanOrEqual(3);
  });

  it('a server that sends ranges chunked is read over node:http instead', async () => {
    const file = randomBytes(10_000);
    const srv = await startRangeServer(file, {
      hook: (_req, res, start) => {
        const end = Math.min(start + 999, file.length - 1);
        res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${file.length}` });
        res.write(file.subarray(start, start + 10));
        res.end(file.subarray(start + 10, end + 1));
        return true;
      },
    });
    const { out } = await fetchWith(driver, srv.url, file.length, 1000, 2);
    expect(out.equals(file)).toBe(true);
  });

  it('bytes beyond a Content-Length never reach the next range', async () => {
    const file = randomBytes(8000);
    const srv = await startRangeServer(file, {
      hook: (_req, res, start, seen) => {
        if (start !== 0 || seen > 1) return false;
        // One socket write: the head, the range and trailing garbage a next read would see.
        const body = file.subarray(0, 1000);
        const head = `HTTP/1.1 206 Partial Content\r\ncontent-length: 1000\r\ncontent-range: bytes 0-999/${file.length}\r\n\r\n`;
        res.socket?.end(Buffer.concat([Buffer.from(head), body, Buffer.from('HTTP/1.1 206 junk')]));
        return true;
      },
    });
    const { out } = await fetchWith(
      new HttpRangeDriver({ socketReceive: true }),
      srv.url,
      file.length,
      1000,
      1,
    );
    expect(out.equals(file)).toBe(true);
  });

  it('an idle pooled connection does not keep the process alive', async () => {
    const file = randomBytes(4000);
    const srv = await startRangeServer(file);
    srv.server.unref();
    // The server's side of each connection must not count: only the client's sockets are looked at.
    srv.server.on('connection', (socket) => socket.unref());
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap');
    // Sockets of earlier tests may still be closing: settle, and never count more than before.
    await new Promise((r) => setTimeout(r, 50));
    const before = sockets().length;
    const { out } = await fetchWith(driver, srv.url, file.length, 1000, 2);
    expect(out.equals(file)).toBe(true);
    expect(sockets().length).toBeLessThanOrEqual(before);
  });

  it('a kept-alive connection the server closed while idle is replaced', async () => {
    const file = randomBytes(4000);
    const srv = await startRangeServer(file);
    srv.server.keepAliveTimeout = 50;
    const first = await fetchWith(driver, srv.url, file.length, 1000, 1);
    expect(first.out.equals(file)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    const second = await fetchWith(driver, srv.url, file.length, 1000, 1);
    expect(second.out.equals(file)).toBe(true);
  });
});

async function fetchWith(
  d: HttpRangeDriver,
  url: string,
  size: number,
  chunkSize: number,
  concurrency: number,
) {
  const out = Buffer.alloc(size);
  await d.download({
    url,
    size,
    chunkSize,
    concurrency,
    onChunk: async (index, data) => {
      data.copy(out, index * chunkSize);
    },
  });
  return { out };
}
