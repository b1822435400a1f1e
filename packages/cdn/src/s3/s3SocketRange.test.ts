// Ranged GETs over the socket receiver, signed by our own SigV4 (s3SocketRange.ts, sigV4.ts),
// against the real Ceph RGW: through a loopback forwarder that records each request's head, we
// see which path sent it, and that both paths deliver the same bytes and the same errors.
import { createHash, randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { isSluiceError } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, deleteBucket, s3TestEnv, testSettings, uniqueBucket } from '../testS3.js';
import { S3Downloader } from './s3Downloader.js';
import { S3Objects } from './s3Objects.js';
import { signS3Get } from './sigV4.js';

describe('signS3Get', () => {
  it("signs as the SDK's own signer does (@smithy/signature-v4, path-style; the SigV4 docs' GET example inputs)", () => {
    const signed = signS3Get(
      'https://s3.amazonaws.com',
      'examplebucket',
      'test.txt',
      'us-east-1',
      {
        accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      },
      { range: 'bytes=0-9' },
      new Date('2013-05-24T00:00:00Z'),
    );
    expect(signed.url.href).toBe('https://s3.amazonaws.com/examplebucket/test.txt');
    expect(signed.headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=819484c483cfb97d16522b1ac156f87e61677cc8f1f2545c799650ef178f4aa8',
    );
    expect(signed.headers['x-amz-date']).toBe('20130524T000000Z');
  });

  it('escapes key segments as SigV4 wants (spaces, unicode, reserved), keeping the slashes', () => {
    const { url } = signS3Get(
      'http://127.0.0.1:9000',
      'b',
      "dir/a b+(1)'é*.bin",
      'us-east-1',
      { accessKeyId: 'A', secretAccessKey: 'S' },
      {},
    );
    expect(url.pathname).toBe('/b/dir/a%20b%2B%281%29%27%C3%A9%2A.bin');
  });
});

const env = s3TestEnv();
const bucket = uniqueBucket('sluice-socket-range');
const admin = env ? adminClient(env) : undefined;

/** A TCP forwarder to the RGW that keeps the head of every request it passes on. */
let forwarder: Server | undefined;
const heads: string[] = [];
const sockets = new Set<Socket>();
let forwardUrl = '';

beforeAll(async () => {
  if (!env) return;
  const target = new URL(env.endpoint);
  forwarder = createServer((client) => {
    const upstream = createConnectionTo(target);
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(text)) heads.push(text.split('\r\n\r\n')[0] ?? '');
      upstream.write(d);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => forwarder?.listen(0, '127.0.0.1', r));
  const address = forwarder.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  forwardUrl = `http://127.0.0.1:${address.port}`;
  await new S3Objects(testSettings(env, bucket)).ensureBucket();
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  forwarder?.close();
  if (admin) {
    await deleteBucket(admin, bucket);
    admin.destroy();
  }
});

function createConnectionTo(target: URL): Socket {
  return createConnection({ host: target.hostname, port: Number(target.port || 80) });
}

function downloader(socketReceive: boolean, secret?: string): S3Downloader {
  if (!env) throw new Error('needs S3');
  const settings = { ...testSettings(env, bucket), endpoint: forwardUrl };
  if (secret !== undefined && settings.downloader) settings.downloader.secretAccessKey = secret;
  return new S3Downloader(settings, { socketReceive, backoffMs: 10, maxBackoffMs: 50 });
}

async function fetchAll(d: S3Downloader, key: string, size: number, chunkSize: number) {
  const out = Buffer.alloc(size);
  await d.download({
    url: key,
    size,
    chunkSize,
    concurrency: 3,
    onChunk: async (i, data) => {
      data.copy(out, i * chunkSize);
    },
  });
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.skipIf(!env)('S3Downloader ranges over the socket receiver (Ceph RGW)', () => {
  const body = randomBytes(5 * 1024 * 1024 + 123);
  const key = 'models/a b/é.bin';

  beforeAll(async () => {
    await admin?.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  });

  /** Downloads the object over one path: its bytes, and the heads of the GETs it sent. */
  async function getsVia(socket: boolean): Promise<string[]> {
    heads.length = 0;
    const d = downloader(socket);
    const out = await fetchAll(d, key, body.length, 1024 * 1024);
    d.destroy();
    expect(sha(out)).toBe(sha(body));
    return heads.filter((h) => h.startsWith('GET '));
  }

  it('sends our signed GETs (not the SDK) and delivers the object byte for byte', async () => {
    const gets = await getsVia(true);
    expect(gets).toHaveLength(6);
    for (const h of gets) {
      expect(h).toMatch(/\r\nauthorization: AWS4-HMAC-SHA256 /i);
      expect(h).not.toMatch(/amz-sdk-invocation-id/i);
    }
  });

  it('the SDK path (socketReceive false) gives the same bytes, through the SDK', async () => {
    const gets = await getsVia(false);
    expect(gets.length).toBeGreaterThanOrEqual(6);
    for (const h of gets) expect(h).toMatch(/amz-sdk-invocation-id/i);
  });

  it.each([true, false])(
    'errors read the same on both paths (socket %s): a missing key, wrong keys, a changed object',
    async (socket) => {
      const missing = await fetchAll(downloader(socket), 'nope.bin', 10, 4).catch((e) => e);
      expect(isSluiceError(missing, 'ERR_NOT_FOUND'), String(missing)).toBe(true);
      const secret = 'x'.repeat(40);
      const denied = await fetchAll(downloader(socket, secret), key, body.length, 1 << 20).catch(
        (e) => e,
      );
      expect(isSluiceError(denied, 'ERR_ACCESS_DENIED'), String(denied)).toBe(true);
      expect(String(denied.message)).toContain(bucket);
      expect(String(denied.message)).not.toContain(secret);
      const d = downloader(socket);
      const changed = await d
        .download({
          url: key,
          size: body.length,
          chunkSize: 1 << 20,
          concurrency: 1,
          etag: '"0123456789abcdef0123456789abcdef"',
          onChunk: async () => {},
        })
        .catch((e) => e);
      d.destroy();
      expect(isSluiceError(changed, 'ERR_SOURCE_CHANGED'), String(changed)).toBe(true);
    },
  );
});
