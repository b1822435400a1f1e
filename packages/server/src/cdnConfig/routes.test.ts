import { DEFAULT_CHUNK_SIZE, deriveEnvelopeKey, envelopeAad, openEnvelope } from '@sluice/core';
import type { Role, S3CdnConfig } from '@sluice/protocol';
import { CDN_CONFIG_AAD, CDN_CONFIG_RESOURCE } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../app/createServer.js';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  runCleanup,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';

const HW_A = 'a1'.repeat(32);
const HW_B = 'b2'.repeat(32);
const ROLES: Role[] = ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'];
const S3: S3CdnConfig = {
  kind: 's3',
  endpoint: 'http://127.0.0.1:7480',
  region: 'us-east-1',
  bucket: 'sluice-big',
  prefix: 'fleet/models',
  chunkSize: 4 * 1024 * 1024,
  downloader: {
    accessKeyId: 'DOWNLOADERKEYID0001',
    secretAccessKey: 'downloader-secret-never-leaks',
  },
  uploader: { accessKeyId: 'UPLOADERKEYID000001', secretAccessKey: 'uploader-secret-never-leaks' },
};
const SECRETS = [
  S3.downloader.secretAccessKey,
  S3.uploader.secretAccessKey,
  S3.downloader.accessKeyId,
  S3.uploader.accessKeyId,
];

const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

interface Fixture {
  s: Running;
  tokens: Record<Role, string>;
  emails: Record<Role, string>;
  ids: Record<Role, string>;
  log: string[];
}

async function fixture(options: Parameters<typeof startServer>[0] = {}): Promise<Fixture> {
  const log: string[] = [];
  const s = await startServer({
    logger: { level: 'trace', stream: { write: (line: string) => log.push(line) } },
    ...options,
  });
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  const f = { s, tokens: {}, emails: {}, ids: {}, log } as Fixture;
  for (const role of ROLES) {
    f.emails[role] = `${role.toLowerCase()}@example.test`;
    f.ids[role] = (await addUser(s, f.emails[role], role)).id;
    f.tokens[role] = (await login(s.url, f.emails[role])).accessToken;
  }
  return f;
}

function ask(
  f: Fixture,
  role: Role,
  body: { password?: string; hardware?: string; write?: boolean | string } = {},
) {
  return call(f.s.url, 'POST', '/cdn-config', {
    token: f.tokens[role],
    json: { password: PASSWORD, hardware: HW_A, ...body },
  });
}

/** Opens a CDN-config envelope the way a device does and returns the config it holds. */
async function open(f: Fixture, role: Role, envelope: unknown, hardware = HW_A) {
  const key = await deriveEnvelopeKey(f.emails[role], PASSWORD, hardware);
  const payload = openEnvelope(key, envelope, CDN_CONFIG_AAD);
  expect(payload.resource).toEqual(CDN_CONFIG_RESOURCE);
  expect(payload.manifest).toBeNull();
  return JSON.parse(payload.small.toString('utf8')) as Record<string, unknown>;
}

describe('embedded default (no cdn option)', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  it('GET /cdn-config says http with the default chunk size, to every role', async () => {
    for (const role of ROLES) {
      const r = await call(f.s.url, 'GET', '/cdn-config', { token: f.tokens[role] });
      expect(r.status, role).toBe(200);
      expect(r.body).toEqual({ kind: 'http', chunkSize: DEFAULT_CHUNK_SIZE });
    }
    expect((await call(f.s.url, 'GET', '/cdn-config')).status).toBe(401);
  });

  it('POST /cdn-config seals the same settings in a device envelope', async () => {
    const r = await ask(f, 'Operator');
    expect(r.status).toBe(200);
    expect(await open(f, 'Operator', r.body)).toEqual({
      kind: 'http',
      chunkSize: DEFAULT_CHUNK_SIZE,
    });
    expect((await f.s.server.store.users.get(f.ids.Operator))?.boundHardwareHash).toBe(HW_A);
  });
});

describe('S3 CDN', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture({
      cdn: S3,
      loginLimits: {
        perAddress: { limit: 10_000, windowSeconds: 60 },
        withToken: { limit: 3, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
      },
    });
  });

  it('GET /cdn-config gives the settings without any key, to every role', async () => {
    for (const role of ROLES) {
      const r = await call(f.s.url, 'GET', '/cdn-config', { token: f.tokens[role] });
      expect(r.status, role).toBe(200);
      expect(r.body).toEqual({
        kind: 's3',
        endpoint: S3.endpoint,
        region: S3.region,
        bucket: S3.bucket,
        prefix: S3.prefix,
        chunkSize: S3.chunkSize,
      });
      for (const secret of SECRETS) expect(r.text).not.toContain(secret);
    }
  });

  it('a device user gets the downloader keys only, readable only on its device', async () => {
    const r = await ask(f, 'Validator');
    expect(r.status).toBe(200);
    for (const secret of SECRETS) expect(r.text).not.toContain(secret);
    const config = await open(f, 'Validator', r.body);
    expect(config).toEqual({
      kind: 's3',
      endpoint: S3.endpoint,
      region: S3.region,
      bucket: S3.bucket,
      prefix: S3.prefix,
      chunkSize: S3.chunkSize,
      downloader: S3.downloader,
    });
    await expect(open(f, 'Validator', r.body, HW_B)).rejects.toMatchObject({
      code: 'ERR_BAD_ENVELOPE',
    });
    // Not interchangeable with a resource envelope.
    const key = await deriveEnvelopeKey(f.emails.Validator, PASSWORD, HW_A);
    expect(() => openEnvelope(key, r.body, envelopeAad(CDN_CONFIG_RESOURCE))).toThrow(
      /authentication failed/,
    );
  });

  it('uploader keys go to uploading roles that ask for them', async () => {
    for (const role of ['ResourceUploader', 'Admin', 'ApiAdmin'] as const) {
      const plain = await open(f, role, (await ask(f, role)).body);
      expect(plain.uploader, role).toBeUndefined();
      const r = await ask(f, role, { write: true });
      expect(r.status, role).toBe(200);
      const config = await open(f, role, r.body);
      expect(config.downloader).toEqual(S3.downloader);
      expect(config.uploader).toEqual(S3.uploader);
    }
  });

  it('a device user asking for uploader keys is refused with 403, binding nothing', async () => {
    const r = await ask(f, 'Operator', { write: true });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'ERR_FORBIDDEN' });
    for (const secret of SECRETS) expect(r.text).not.toContain(secret);
    expect((await f.s.server.store.users.get(f.ids.Operator))?.boundHardwareHash).toBeNull();
  });

  it('the first device binds; another device gets 403 ERR_DEVICE_NOT_BOUND', async () => {
    expect((await ask(f, 'Operator', { hardware: HW_B })).status).toBe(200);
    const refused = await ask(f, 'Operator', { hardware: HW_A });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'ERR_DEVICE_NOT_BOUND' });
    expect((refused.body as { error: string }).error).toContain('reset the device binding');
    // The binding is the one the resource envelope uses.
    const envelope = await call(f.s.url, 'POST', '/resources/get/models', {
      token: f.tokens.Operator,
      json: { fileName: 'none.bin', password: PASSWORD, hardware: HW_A },
    });
    expect(envelope.status).toBe(404);
    expect((await f.s.server.store.users.get(f.ids.Operator))?.boundHardwareHash).toBe(HW_B);
  });

  it('a wrong password is 401 and counts against the (user, address) pair on its own budget, not against logins', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await ask(f, 'Admin', { password: `${PASSWORD}-wrong` });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ code: 'ERR_UNAUTHORIZED', error: 'wrong password' });
    }
    const limited = await ask(f, 'Admin');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Someone holding the token cannot lock the account's logins this way (nor the reverse).
    const loginAttempt = await call(f.s.url, 'POST', '/login', {
      json: { email: f.emails.Admin, password: PASSWORD },
    });
    expect(loginAttempt.status).toBe(200);
  });

  it('bad bodies are 400, anonymous and disabled callers 401', async () => {
    expect((await ask(f, 'Validator', { hardware: 'not a hash!' })).status).toBe(400);
    expect((await ask(f, 'Validator', { write: 'yes' })).status).toBe(400);
    const anonymous = await call(f.s.url, 'POST', '/cdn-config', {
      json: { password: PASSWORD, hardware: HW_A },
    });
    expect(anonymous.status).toBe(401);
    const disabled = await call(f.s.url, 'POST', `/users/${f.ids.Validator}/disable`, {
      token: f.tokens.ApiAdmin,
    });
    expect(disabled.status).toBe(200);
    expect((await ask(f, 'Validator')).status).toBe(401);
    expect((await call(f.s.url, 'GET', '/cdn-config', { token: f.tokens.Validator })).status).toBe(
      401,
    );
  });

  it('never logs a key', async () => {
    const log = f.log.join('');
    expect(log).toContain('cdnConfig.issued');
    for (const secret of SECRETS) expect(log).not.toContain(secret);
  });
});

describe('cdn option', () => {
  it('is checked at start; the error names the field, never a secret', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const bad: [Partial<S3CdnConfig>, RegExp][] = [
      [{ endpoint: 'ftp://host' }, /cdn\.endpoint/],
      [{ endpoint: 'http://user:pw@host:7480' }, /cdn\.endpoint/],
      [{ bucket: 'Bad_Bucket' }, /cdn\.bucket/],
      [{ prefix: '../x' }, /cdn\.prefix/],
      [{ chunkSize: 1000 }, /cdn\.chunkSize/],
      [{ uploader: { accessKeyId: 'UPLOADERKEYID000001', secretAccessKey: '' } }, /uploader/],
    ];
    for (const [change, message] of bad) {
      const attempt = createServer({ dataDir, scrypt: TEST_SCRYPT, cdn: { ...S3, ...change } });
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(message);
      for (const secret of SECRETS) expect(error?.message).not.toContain(secret);
    }
    // The data directory was released each time.
    const ok = await createServer({ dataDir, scrypt: TEST_SCRYPT, cdn: S3 });
    await ok.close();
  });
});
