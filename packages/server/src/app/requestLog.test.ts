import { randomBytes } from 'node:crypto';
import { pull, push, Session } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';
import { createServer } from './createServer.js';

const UPLOADER = 'uploader@example.test';
const HW = 'd4'.repeat(32);

interface Line {
  level: number;
  msg: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

describe('request log lines', () => {
  let s: Running;
  const lines: string[] = [];
  beforeAll(async () => {
    s = await startServer({
      logger: { level: 'debug', stream: { write: (line: string) => lines.push(line) } },
    });
    await addUser(s, UPLOADER, 'ResourceUploader');
  });
  afterAll(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });

  it('one line per request: info, big-part ranges at debug, none for the ops routes', async () => {
    const session = new Session({ apiUrl: s.url });
    session.setCredentials(UPLOADER, PASSWORD);
    await session.login();
    const data = randomBytes(20 * 1024 * 1024);
    await push(session, 'models', 'm.bin', data, { chunkSize: 4 * 1024 * 1024 });
    lines.length = 0;
    const got = await pull(session, 'models', 'm.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
    });
    expect(got.data.equals(data)).toBe(true);
    await call(s.url, 'GET', '/healthz');
    await call(s.url, 'GET', '/no/such/route');

    const parsed = lines.map((l) => JSON.parse(l) as Line);
    const requests = parsed.filter((l) => l.msg === 'request completed');
    expect(parsed.filter((l) => l.msg === 'incoming request')).toEqual([]);
    const big = requests.filter((l) => l.req?.url.includes('/m.bin/big'));
    expect(big.length).toBeGreaterThanOrEqual(2);
    expect(big.every((l) => l.level === 20 && l.res?.statusCode === 206)).toBe(true);
    const info = requests.filter((l) => l.level === 30);
    // At the default level (info) a pull shows its envelope request, not its ranges.
    expect(info.map((l) => `${l.req?.method} ${l.req?.url} ${l.res?.statusCode}`)).toEqual([
      'POST /resources/get/models 200',
      'GET /no/such/route 404',
    ]);
    expect(parsed.some((l) => l.req?.url === '/healthz')).toBe(false);
  });

  it('refuses an unknown level; silent logs nothing', async () => {
    const dataDir = await tempDir();
    try {
      await expect(
        createServer({ dataDir, scrypt: TEST_SCRYPT, logger: { level: 'loud' as never } }),
      ).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG',
        message: /^logger\.level must be one of/,
      });
      const quiet: string[] = [];
      const t = await startServer({
        dataDir,
        logger: { level: 'silent', stream: { write: (l: string) => quiet.push(l) } },
      });
      await call(t.url, 'GET', '/no/such/route');
      await t.close();
      expect(quiet).toEqual([]);
    } finally {
      await removeDir(dataDir);
    }
  });
});
