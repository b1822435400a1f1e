// `sluice passwd` and `sluice user set-password` as a user runs them: the built binary against a
// `sluice serve` child over a fresh data directory.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastHashConfig, finished, listeningUrl, type RunResult, run, start } from './test-cli.js';

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const USER = 'rotating@example.com';
const PASSWORD = 'correct horse battery staple';
const CHANGED = 'a brand new passphrase 42';
const RESET = 'set by the administrator 7';
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-passwd-test-'));
let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;

beforeAll(async () => {
  serve = start(
    [
      'serve',
      '--config',
      fastHashConfig(dir),
      '--data',
      join(dir, 'data'),
      '--port',
      '0',
      '--init-admin',
      ADMIN,
    ],
    { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
  );
  serveDone = finished(serve);
  url = await listeningUrl(serve);
  expect((await login('admin', ADMIN, ADMIN_PASSWORD)).code).toBe(0);
  const created = await as('admin', ['user', 'create', USER, '--role', 'Operator'], {
    SLUICE_NEW_PASSWORD: PASSWORD,
  });
  expect(created.code, created.stderr).toBe(0);
});
afterAll(async () => {
  serve.kill('SIGTERM');
  await serveDone;
  rmSync(dir, { recursive: true, force: true });
});

/** A config directory per machine the account is used on. */
function as(who: string, args: string[], env: Record<string, string> = {}, input?: string) {
  return run(args, {
    env: { SLUICE_CONFIG_DIR: join(dir, `config-${who}`), ...env },
    ...(input === undefined ? {} : { input }),
  });
}

function login(who: string, email: string, password: string) {
  return as(who, ['login', '--server', url, '--email', email], { SLUICE_PASSWORD: password });
}

describe('sluice passwd', () => {
  it('changes the password: this login goes on, the other machines must log in again, the old password is refused', async () => {
    expect((await login('laptop', USER, PASSWORD)).code).toBe(0);
    expect((await login('phone', USER, PASSWORD)).code).toBe(0);
    const r = await as('laptop', ['passwd', '--password-stdin'], {}, `${PASSWORD}\n${CHANGED}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`password changed for ${USER}`);
    expect(`${r.stdout}${r.stderr}`).not.toContain(PASSWORD);
    expect(`${r.stdout}${r.stderr}`).not.toContain(CHANGED);
    const here = await as('laptop', ['ls', 'models']);
    expect(here.code, here.stderr).toBe(0);
    const phone = await as('phone', ['ls', 'models']);
    expect(phone.code).toBe(1);
    expect(phone.stderr).toMatch(/\((ERR_UNAUTHORIZED|ERR_NOT_LOGGED_IN)\)/);
    expect((await login('other', USER, PASSWORD)).code).toBe(1);
    expect((await login('other', USER, CHANGED)).code).toBe(0);
  });

  it('refuses a wrong current password, a weak new one and a missing line, changing nothing', async () => {
    const wrong = await as(
      'laptop',
      ['passwd', '--password-stdin'],
      {},
      `not the current one at all\n${RESET}\n`,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('(ERR_UNAUTHORIZED)');
    const weak = await as('laptop', ['passwd'], {
      SLUICE_PASSWORD: CHANGED,
      SLUICE_NEW_PASSWORD: 'short',
    });
    expect(weak.code).toBe(1);
    expect(weak.stderr).toContain('(ERR_BAD_REQUEST)');
    const oneLine = await as('laptop', ['passwd', '--password-stdin'], {}, `${CHANGED}\n`);
    expect(oneLine.code).toBe(2);
    expect((await login('check', USER, CHANGED)).code).toBe(0);
  });
});

describe('sluice user set-password', () => {
  it("resets a user's password (Admin): the user's sessions end and it logs in with the new one; a non-admin is refused", async () => {
    const refused = await as('laptop', ['user', 'set-password', ADMIN], {
      SLUICE_NEW_PASSWORD: RESET,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(ERR_FORBIDDEN)');
    const r = await as(
      'admin',
      ['user', 'set-password', USER, '--password-stdin'],
      {},
      `${RESET}\n`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`password set: ${USER}`);
    expect(r.stderr).not.toContain(RESET);
    const laptop = await as('laptop', ['ls', 'models']);
    expect(laptop.code).toBe(1);
    expect((await login('after-reset', USER, CHANGED)).code).toBe(1);
    expect((await login('after-reset', USER, RESET)).code).toBe(0);
    expect((await login('admin-again', ADMIN, ADMIN_PASSWORD)).code).toBe(0);
  });
});
