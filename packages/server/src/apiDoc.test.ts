import { readFile } from 'node:fs/promises';
import { ROLES } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type SluiceServer } from './app/createServer.js';
import { DEFAULT_BODY_LIMIT } from './app/settings.js';
import { DEFAULT_TRANSFER_TIMEOUTS } from './app/transferTimeouts.js';
import { DEFAULT_LOGIN_LIMITS } from './auth/loginLimiter.js';
import { DEFAULT_SCRYPT_PARAMS } from './auth/passwordHash.js';
import { PASSWORD_MIN_LENGTH } from './auth/passwordRules.js';
import { OPERATIONS, PERMISSIONS } from './auth/permissions.js';
import { DEFAULT_ACCESS_TOKEN_TTL_SECONDS } from './auth/tokens.js';
import { DEFAULT_READINESS_TIMEOUT_MS } from './ops/readiness.js';
import { removeDir, TEST_SCRYPT, tempDir } from './test-helpers.js';

const DOC = new URL('../../../docs/API.md', import.meta.url);

/** The rows of the markdown table between `<!-- name:begin -->` and `<!-- name:end -->`. */
function table(doc: string, name: string): string[][] {
  const m = new RegExp(`<!-- ${name}:begin -->\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(doc);
  if (!m?.[1]) throw new Error(`docs/API.md has no ${name} table`);
  return m[1]
    .trim()
    .split('\n')
    .map((line) =>
      line
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim().replace(/^`|`$/g, '')),
    );
}

let doc: string;
let server: SluiceServer;
let dataDir: string;
beforeAll(async () => {
  doc = await readFile(DOC, 'utf8');
  dataDir = await tempDir();
  server = await createServer({ dataDir, scrypt: TEST_SCRYPT });
  await server.app.ready();
});
afterAll(async () => {
  await server.close();
  await removeDir(dataDir);
});

describe('docs/API.md', () => {
  it('has the role × operation table the guard uses', () => {
    const [header, separator, ...rows] = table(doc, 'permissions');
    expect(header).toEqual(['operation', ...ROLES]);
    expect(separator?.every((c) => /^-+$/.test(c))).toBe(true);
    const documented = Object.fromEntries(
      rows.map(([op, ...cells]) => [
        op,
        ROLES.filter((_, i) => {
          const cell = cells[i];
          if (cell !== '✓' && cell !== '—') throw new Error(`bad cell ${cell} for ${op}`);
          return cell === '✓';
        }),
      ]),
    );
    expect(Object.keys(documented)).toEqual([...OPERATIONS]);
    expect(documented).toEqual(PERMISSIONS);
  });

  it('lists exactly the routes the server registers, with their operations', () => {
    const [header, , ...rows] = table(doc, 'routes');
    expect(header).toEqual(['method', 'path', 'operation']);
    const documented = rows.map(([method, path, operation]) => `${method} ${path} ${operation}`);
    const registered = server.routes.map((r) => `${r.method} ${r.url} ${r.operation}`);
    expect([...documented].sort()).toEqual([...registered].sort());
  });

  it('GET /openapi.json has exactly the routes of the table, with the same methods, paths and operations', async () => {
    const [, , ...rows] = table(doc, 'routes');
    const documented = rows.map(
      ([method, path, operation]) => `${method} ${path?.replace(/:(\w+)/g, '{$1}')} ${operation}`,
    );
    const res = await server.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const openapi = res.json() as {
      openapi: string;
      paths: Record<string, Record<string, { 'x-sluice-operation': string; security?: unknown }>>;
    };
    expect(openapi.openapi).toMatch(/^3\./);
    const generated = Object.entries(openapi.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(
        ([method, op]) => `${method.toUpperCase()} ${path} ${op['x-sluice-operation']}`,
      ),
    );
    expect([...generated].sort()).toEqual([...documented].sort());
    // Guarded routes say they need the bearer token; public ones do not.
    expect(openapi.paths['/users']?.get?.security).toEqual([{ bearer: [] }]);
    expect(openapi.paths['/login']?.post?.security).toBeUndefined();
    // Request schemas are carried over (the login body names its fields).
    expect(JSON.stringify(openapi.paths['/login']?.post)).toContain('"password"');
  });

  it('states the defaults the code uses', () => {
    expect(DEFAULT_ACCESS_TOKEN_TTL_SECONDS).toBe(15 * 60);
    expect(doc).toContain('valid 15 minutes');
    expect(doc).toContain(`"expiresIn": ${DEFAULT_ACCESS_TOKEN_TTL_SECONDS}`);
    expect(doc).toContain(
      `N = 2^${DEFAULT_SCRYPT_PARAMS.logN}, r = ${DEFAULT_SCRYPT_PARAMS.r}, p = ${DEFAULT_SCRYPT_PARAMS.p}`,
    );
    expect(doc).toContain(`Passwords are ${PASSWORD_MIN_LENGTH} to`);
    expect(DEFAULT_BODY_LIMIT).toBe(64 * 1024);
    expect(doc).toContain('64 KiB');
    expect(DEFAULT_READINESS_TIMEOUT_MS).toBe(2000);
    expect(doc).toContain('must answer within 2 s (`DEFAULT_READINESS_TIMEOUT_MS`)');
  });

  it('states the login limits and transfer timeouts the code uses (docs/API.md, docs/SECURITY.md)', async () => {
    const security = await readFile(new URL('../../../docs/SECURITY.md', import.meta.url), 'utf8');
    const { perClient, perAddress, perAccount, withToken } = DEFAULT_LOGIN_LIMITS;
    expect([perClient.limit, perClient.lockSeconds, perClient.maxLockSeconds]).toEqual([
      10, 60, 900,
    ]);
    expect(withToken).toEqual(perClient);
    expect(doc).toContain('10 failed attempts per\n(email, client address)');
    expect(security).toContain('`perClient`: 10 failures, then a lock of 60 s');
    expect(perAddress).toEqual({ limit: 60, windowSeconds: 60 });
    expect(security).toContain('`perAddress`: 60 per minute');
    expect(perAccount).toEqual({ limit: 100, windowSeconds: 3600 });
    expect(security).toContain('`perAccount`: 100 per\n  hour');
    expect(perAccount.windowSeconds / perAccount.limit).toBe(36);
    expect(doc).toContain('spaced 36 s apart');
    expect(DEFAULT_TRANSFER_TIMEOUTS).toEqual({
      headersMs: 30_000,
      keepAliveMs: 72_000,
      idleMs: 60_000,
      bodyGraceMs: 10_000,
      bodyMinBytesPerSecond: 1024,
    });
    for (const stated of ['(`headersMs`, 30 s)', '(`idleMs`, 60 s)', '(`keepAliveMs`, 72 s']) {
      expect(security).toContain(stated);
    }
    expect(security).toContain('(`bodyGraceMs` 10 s, `bodyMinBytesPerSecond` 1 KiB/s)');
  });
});
