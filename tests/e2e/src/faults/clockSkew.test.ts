// Clock skew between client and server. The client is the built CLI in a child process whose
// clock is shifted by a preload (skewClock.mjs); the server is not: tokens it is shown with an
// `iat` in its future are forged with its own signing key.
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIGNING_KEY_FILE } from '@sluice/server';
import { describe, expect, it } from 'vitest';
import { DEVICE_USER, MiB, PASSWORD } from '../apiServer.js';
import { sluice, sluiceOk } from './cliChild.js';
import { entries, expectServes, expectVerified, HW, pushedWorld } from './faultWorld.js';

const MINUTE = 60_000;

function cliEnv(configDir: string): Record<string, string> {
  return { SLUICE_CONFIG_DIR: configDir, SLUICE_PASSWORD: PASSWORD, SLUICE_HARDWARE_HASH: HW };
}

describe('clock skew between client and server', () => {
  for (const skewMs of [5 * MINUTE, -5 * MINUTE]) {
    const what = skewMs > 0 ? 'ahead' : 'behind';
    it(`a client clock 5 minutes ${what}: login and pull work, with no extra token renewal`, async () => {
      const w = await pushedWorld(MiB);
      const env = cliEnv(join(w.work, 'config'));
      const logins = w.api.hitCount('POST /login');
      await sluiceOk(['login', '--server', w.api.url, '--email', DEVICE_USER], env, { skewMs });
      const out = join(w.work, 'out.bin');
      const report = JSON.parse(
        await sluiceOk(['pull', 'models', 'm.bin', '-o', out, '--json'], env, { skewMs }),
      ) as { size: number };
      expect(report.size).toBe(w.plain.length);
      await expectVerified(out, w.plain);
      // The CLI's one login, then no refresh: the token's lifetime is counted from when the
      // client asked for it, not against the server's clock.
      expect(w.api.hitCount('POST /login')).toBe(logins + 1);
      expect(w.api.hitCount('POST /token/refresh')).toBe(0);
      await expectServes(w.api, w.plain);
    });
  }

  it('a client clock that jumps 20 minutes ahead (past a 15-minute token): a clear error, no file', async () => {
    const w = await pushedWorld(MiB);
    const env = cliEnv(join(w.work, 'config'));
    await sluiceOk(['login', '--server', w.api.url, '--email', DEVICE_USER], env);
    const out = join(w.work, 'out.bin');
    const pulled = await sluice(['pull', 'models', 'm.bin', '-o', out], env, {
      skewMs: 20 * MINUTE,
    }).done;
    expect(pulled.code).not.toBe(0);
    expect(pulled.stderr).toContain('ERR_TOKEN_INVALID');
    expect(pulled.stderr).toMatch(/clock is ahead/);
    expect(pulled.stderr).not.toContain(PASSWORD);
    expect(await entries(w.work)).toEqual(['config', 'src.bin']);
    await expectServes(w.api, w.plain);
  });

  it('the server refuses a token issued more than 60 s in its future and accepts one within', async () => {
    const w = await pushedWorld(64 * 1024);
    const file = JSON.parse(await readFile(join(w.api.dataDir, SIGNING_KEY_FILE), 'utf8')) as {
      kid: string;
      privateJwk: Record<string, string>;
    };
    const key = createPrivateKey({ key: file.privateJwk, format: 'jwk' });
    const me = await fetch(`${w.api.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: DEVICE_USER, password: PASSWORD }),
    });
    const { accessToken } = (await me.json()) as { accessToken: string };
    const claims = JSON.parse(
      Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString(),
    ) as Record<string, unknown>;
    /** The server's own token, re-issued as if by a server clock `skewS` seconds ahead. */
    const forged = (skewS: number) => {
      const now = Math.floor(Date.now() / 1000) + skewS;
      const header = { alg: 'EdDSA', kid: file.kid, typ: 'at+jwt' };
      const payload = { ...claims, iat: now, exp: now + 900, jti: randomUUID() };
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${part(header)}.${part(payload)}`;
      return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
    };
    const status = async (token: string) =>
      (await fetch(`${w.api.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect(await status(forged(0))).toBe(200);
    expect(await status(forged(30))).toBe(200);
    expect(await status(forged(120))).toBe(401);
    expect(await status(forged(3600))).toBe(401);
    await expectServes(w.api, w.plain);
  });
});
