// Hostile-input suite (docs/SECURITY.md): secrets (passwords, tokens, data keys, hardware
// hashes, S3 keys) never appear in a log line or an error body, whatever the caller sends.

import type { S3CdnConfig } from '@sluice/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, login, PASSWORD, type Reply, removeDir } from '../test-helpers.js';
import {
  expectHealthy,
  fieldsOf,
  formOf,
  type Hostile,
  type RawReply,
  raw,
  type Sealed,
  sealRandom,
  startHostile,
  upload,
} from './test-hostile.js';

const CDN: S3CdnConfig = {
  kind: 's3',
  // Nothing listens there: the server's HEAD of a cdnKey fails.
  endpoint: 'http://127.0.0.1:9',
  region: 'us-east-1',
  bucket: 'hostile-big',
  downloader: { accessKeyId: 'HOSTILEDOWNKEY000001', secretAccessKey: 'down-secret-0f3c9a7e' },
  uploader: { accessKeyId: 'HOSTILEUPKEY00000001', secretAccessKey: 'up-secret-7b21d4c8' },
};
const WRONG = 'wrong password 9d8e7f6a5b';
const HW = 'hwsecret'.repeat(8);

let info: Hostile;
let trace: Hostile;
let sealed: Sealed;
/** Every answer a case got, to search for secrets. */
const answers: string[] = [];
/** Every secret a case handed the server or got from it. */
const secrets = new Set<string>([
  PASSWORD,
  WRONG,
  HW,
  CDN.downloader.secretAccessKey,
  CDN.uploader.secretAccessKey,
]);

beforeAll(async () => {
  info = await startHostile({ level: 'info', cdn: CDN });
  trace = await startHostile({ level: 'trace', cdn: CDN });
  sealed = await sealRandom(20_000);
  secrets.add(sealed.dataKey.toString('base64'));
  secrets.add(sealed.dataKey.toString('hex'));
  for (const h of [info, trace]) {
    for (const t of Object.values(h.tokens)) secrets.add(t);
    secrets.add(h.healthToken);
  }
});
afterAll(async () => {
  for (const h of [info, trace]) {
    await h.close();
    await removeDir(h.dataDir);
  }
});
afterEach(async () => {
  await expectHealthy(info);
  await expectHealthy(trace);
});

function keep<T extends Reply | RawReply>(r: T): T {
  answers.push(r.text);
  return r;
}

/** The secrets found in `texts` (each token also by its signature alone). */
function leaked(texts: string[]): string[] {
  const all = texts.join('\n');
  const found: string[] = [];
  for (const s of secrets) {
    const parts = s.split('.');
    const needle = parts.length === 3 ? (parts[2] ?? s) : s;
    if (all.includes(needle) || all.includes(JSON.stringify(needle).slice(1, -1))) {
      found.push(`${s.slice(0, 12)}…`);
    }
  }
  return found;
}

/** Drives every route that takes a secret, with good and bad input, on `h`. */
async function exercise(h: Hostile): Promise<void> {
  const op = h.emails.Operator;
  const good = await login(h.url, op);
  secrets.add(good.accessToken);
  secrets.add(good.refreshToken);
  keep(await call(h.url, 'POST', '/login', { json: { email: op, password: WRONG } }));
  keep(
    await call(h.url, 'POST', '/login', { json: { email: 'ghost@example.test', password: WRONG } }),
  );
  keep(
    await raw(h.url, 'POST', '/login', {
      headers: { 'content-type': 'application/json' },
      body: `{"email":"${op}","password":"${WRONG}"`,
    }),
  );
  keep(
    await call(h.url, 'POST', '/login', {
      json: { email: op, password: `${WRONG}${'x'.repeat(5000)}` },
    }),
  );
  const rotated = keep(
    await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: good.refreshToken } }),
  );
  const next = rotated.body as { accessToken: string; refreshToken: string };
  secrets.add(next.accessToken);
  secrets.add(next.refreshToken);
  keep(await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: good.refreshToken } }));
  keep(await call(h.url, 'POST', '/logout', { json: { refreshToken: next.refreshToken } }));
  keep(await call(h.url, 'GET', '/me', { token: `${good.accessToken}x` }));
  keep(
    await call(h.url, 'POST', '/users', {
      token: h.tokens.ApiAdmin,
      json: { email: 'short-pw@example.test', password: 'short', role: 'Operator' },
    }),
  );
  keep(
    await call(h.url, 'POST', '/users', {
      token: h.tokens.ApiAdmin,
      json: { email: 'new-user@example.test', password: WRONG, role: 'Operator' },
    }),
  );
  keep(await upload(h, 'models', formOf(fieldsOf(sealed, 'm.bin'))));
  keep(
    await upload(
      h,
      'models',
      formOf({ ...fieldsOf(sealed, 'c.bin'), big: undefined, cdnKey: 'c/c.bin' }),
    ),
  );
  keep(
    await upload(
      h,
      'models',
      formOf({ ...fieldsOf(sealed, 'bad'), dataKey: `${sealed.dataKey.toString('base64')}AA` }),
    ),
  );
  const envelope = (password: string, hardware = HW) =>
    call(h.url, 'POST', '/resources/get/models', {
      token: h.tokens.Operator,
      json: { fileName: 'm.bin', password, hardware },
    });
  keep(await envelope(WRONG));
  keep(await envelope(PASSWORD));
  keep(await envelope(PASSWORD, `${HW}x`));
  keep(await call(h.url, 'GET', '/cdn-config', { token: h.tokens.Operator }));
  keep(
    await call(h.url, 'POST', '/cdn-config', {
      token: h.tokens.Operator,
      json: { password: WRONG, hardware: HW, write: true },
    }),
  );
  keep(
    await call(h.url, 'POST', '/cdn-config', {
      token: h.tokens.ResourceUploader,
      json: { password: PASSWORD, hardware: HW, write: true },
    }),
  );
}

describe('secrets in logs and answers', () => {
  it('at the default info level no password, token, data key, hardware hash or S3 key reaches a log line', async () => {
    await exercise(info);
    expect(info.lines.length).toBeGreaterThan(20);
    expect(leaked(info.lines)).toEqual([]);
  });

  // Finding F6 in docs/SECURITY.md (fixed; this guards it): at trace level @fastify/multipart logs its busboy options,
  // which hold the request headers, Authorization included; the redact paths miss them.
  it('at trace level no password, token, data key, hardware hash or S3 key reaches a log line', async () => {
    await exercise(trace);
    expect(leaked(trace.lines)).toEqual([]);
  });

  it('no answer (error or success) carries a password, token of another request, data key or S3 key', async () => {
    await exercise(info);
    // The login and refresh answers carry their own new tokens by design: leave those out.
    const own = new Set(
      answers.flatMap((a) => {
        try {
          const b = JSON.parse(a) as { accessToken?: string; refreshToken?: string };
          return b.accessToken === undefined ? [] : [a];
        } catch {
          return [];
        }
      }),
    );
    const others = answers.filter((a) => !own.has(a));
    expect(others.length).toBeGreaterThan(20);
    expect(leaked(others)).toEqual([]);
  });

  it('a 500 answer (the CDN unreachable during an upload) is generic: no message, stack, endpoint or key', async () => {
    const h = info;
    const before = h.lines.length;
    const form = formOf({ ...fieldsOf(sealed, 'cdn.bin'), big: undefined, cdnKey: 'cdn/cdn.bin' });
    const r = await upload(h, 'models', form);
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: 'internal server error', code: 'ERR_INTERNAL' });
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    // The log has the fault for the operator, without a key.
    const logged = h.lines.slice(before);
    expect(logged.some((l) => l.includes('"level":50'))).toBe(true);
    expect(leaked(logged)).toEqual([]);
  });

  it('a validation error names the field, never its value', async () => {
    const marker = 'value-marker-3e1f';
    for (const [path, body] of [
      ['/login', { email: `${marker}`, password: `${marker}${'p'.repeat(5000)}` }],
      ['/token/refresh', { refreshToken: `${marker}${'r'.repeat(300)}` }],
      [
        '/resources/get/models',
        { fileName: `${marker}/..`, password: marker, hardware: `${marker}!` },
      ],
    ] as const) {
      const r = await call(info.url, 'POST', path, { token: info.tokens.Operator, json: body });
      expect(r.status).toBe(400);
      expect(r.text).not.toContain(marker);
    }
  });
});
