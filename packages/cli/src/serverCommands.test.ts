// The server-backed commands as a user runs them: `sluice serve` as a child process over a fresh
// data directory, and every client command as the built binary against it.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fastHashConfig,
  finished,
  listeningUrl,
  type RunResult,
  run,
  runOnTty,
  skipTty,
  start,
} from './test-cli.js';

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const DEVICE_A = 'a'.repeat(64);
const DEVICE_B = 'b'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-server-test-'));
/** `--config` of every server here: a cheaper password hash. */
const config = fastHashConfig(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dataDir = join(dir, 'data');
let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;

afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGKILL');
    await serveDone;
  }
});

/** A config directory per account, as if each were a different person or machine. */
const configOf = (who: string) => join(dir, `config-${who}`);

function as(who: string, args: string[], env: Record<string, string> = {}, input?: string) {
  return run(args, {
    env: { SLUICE_CONFIG_DIR: configOf(who), ...env },
    ...(input === undefined ? {} : { input }),
  });
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(async () => {
  serve = start(
    ['serve', '--config', config, '--data', dataDir, '--port', '0', '--init-admin', ADMIN],
    { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
  );
  serveDone = finished(serve);
  url = await listeningUrl(serve);
});

describe('sluice against a server started with `sluice serve`', () => {
  it('login stores the tokens 0600 in SLUICE_CONFIG_DIR (0700), without echoing the password', async () => {
    const r = await as('admin', ['login', '--server', url, '--email', ADMIN], {
      SLUICE_PASSWORD: ADMIN_PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`as ${ADMIN} (ApiAdmin)`);
    expect(`${r.stdout}${r.stderr}`).not.toContain(ADMIN_PASSWORD);
    const auth = join(configOf('admin'), 'auth.json');
    expect(statSync(auth).mode & 0o777).toBe(0o600);
    expect(statSync(configOf('admin')).mode & 0o777).toBe(0o700);
    expect(readFileSync(auth, 'utf8')).not.toContain(ADMIN_PASSWORD);
  });

  it('login with a wrong password exits 1 with a clear message and stores nothing', async () => {
    const r = await as('intruder', ['login', '--server', url, '--email', ADMIN], {
      SLUICE_PASSWORD: 'not the password at all',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: .*invalid email or password \(ERR_UNAUTHORIZED\)\n$/);
    expect(r.stderr).not.toContain('not the password at all');
    expect(existsSync(join(configOf('intruder'), 'auth.json'))).toBe(false);
  });

  it('login refuses a missing password with a usage error (no TTY, no env)', async () => {
    const r = await as('nobody', ['login', '--server', url, '--email', ADMIN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SLUICE_PASSWORD');
  });

  it('an admin creates users and sets roles; a non-admin is refused', async () => {
    for (const [email, role] of [
      [UPLOADER, 'Operator'],
      [DEVICE, 'Operator'],
    ] as const) {
      const r = await as('admin', ['user', 'create', email, '--role', role, '--json'], {
        SLUICE_NEW_PASSWORD: PASSWORD,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).user).toMatchObject({ email, role, disabled: false });
    }
    const promoted = await as('admin', ['user', 'role', UPLOADER, 'ResourceUploader']);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stderr).toContain('ResourceUploader');

    // The password comes from stdin when asked, over the environment; the login proves that the
    // password given at creation was the one stored.
    const login = await as(
      'uploader',
      ['login', '--server', url, '--email', UPLOADER, '--password-stdin'],
      { SLUICE_PASSWORD: 'not the one, but long enough' },
      `${PASSWORD}\n`,
    );
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toContain('(ResourceUploader)');

    const refused = await as('uploader', ['user', 'create', 'x@example.com', '--role', 'Admin'], {
      SLUICE_NEW_PASSWORD: PASSWORD,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(ERR_FORBIDDEN)');
    const list = await as('admin', ['user', 'list', '--json']);
    expect(JSON.parse(list.stdout).users.map((u: { email: string }) => u.email)).not.toContain(
      'x@example.com',
    );
  });

  it('a disabled user cannot log in until enabled again', async () => {
    expect((await as('admin', ['user', 'disable', DEVICE])).code).toBe(0);
    const r = await as('device', ['login', '--server', url, '--email', DEVICE], {
      SLUICE_PASSWORD: PASSWORD,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_UNAUTHORIZED');
    expect((await as('admin', ['user', 'enable', DEVICE])).code).toBe(0);
    const again = await as('device', ['login', '--server', url, '--email', DEVICE], {
      SLUICE_PASSWORD: PASSWORD,
    });
    expect(again.code, again.stderr).toBe(0);
  });

  const model = join(dir, 'model.bin');

  it('push → ls shows it → pull to a path gives the same bytes; --json parses', async () => {
    writeFileSync(model, randomBytes(3 * 1024 * 1024 + 7));
    const push = await as('uploader', ['push', model, 'models', '--name', 'm1', '--json']);
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ folder: 'models', name: 'm1', version: 1 });

    const ls = await as('device', ['ls', 'models']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^m1\s+v1\s/m);
    const lsJson = JSON.parse((await as('device', ['ls', 'models', '--json'])).stdout);
    expect(lsJson.resources).toHaveLength(1);

    const out = join(dir, 'pulled.bin');
    const pull = await as('device', ['pull', 'models', 'm1', '-o', out, '--json', '--sha256'], {
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: DEVICE_A,
    });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stderr).toBe(''); // quiet when stderr is not a terminal
    const report = JSON.parse(pull.stdout);
    expect(report).toMatchObject({
      folder: 'models',
      name: 'm1',
      version: 1,
      size: 3 * 1024 * 1024 + 7,
      path: out,
      fromCache: false,
      sha256: sha(model),
    });
    expect(report.ms).toBeGreaterThan(0);
    expect(report.mbPerSec).toBeGreaterThan(0);
    expect(sha(out)).toBe(sha(model));
  });

  it.skipIf(skipTty)(
    'on a terminal: the password prompt does not echo, pull draws a progress bar',
    async () => {
      const login = await runOnTty(['login', '--server', url, '--email', DEVICE], {
        env: { SLUICE_CONFIG_DIR: configOf('tty') },
        answers: [[/password for device@example\.com: /, PASSWORD]],
      });
      expect(login.code, login.stdout).toBe(0);
      expect(login.stdout).toContain('logged in to');
      expect(login.stdout).not.toContain(PASSWORD);

      const out = join(dir, 'tty.bin');
      const pull = await runOnTty(['pull', 'models', 'm1', '-o', out], {
        env: { SLUICE_CONFIG_DIR: configOf('tty'), SLUICE_HARDWARE_HASH: DEVICE_A },
        answers: [[/password for device@example\.com: /, PASSWORD]],
      });
      expect(pull.code, pull.stdout).toBe(0);
      expect(pull.stdout).toMatch(/\rmodels\/m1 \[#+\] 100% 3\.0 MiB \/ 3\.0 MiB/);
      expect(pull.stdout).not.toContain(PASSWORD);
      expect(sha(out)).toBe(sha(model));
    },
  );

  it('pull with --cache reuses the verified big part the second time', async () => {
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    const env = { SLUICE_PASSWORD: PASSWORD, SLUICE_HARDWARE_HASH: DEVICE_A };
    const out = join(dir, 'cached.bin');
    const first = await as(
      'device',
      ['pull', 'models', 'm1', '-o', out, '--cache', cache, '--json'],
      env,
    );
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).fromCache).toBe(false);
    const second = await as(
      'device',
      ['pull', 'models', 'm1', '-o', out, '--cache', cache, '--json'],
      env,
    );
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).fromCache).toBe(true);
    expect(sha(out)).toBe(sha(model));
  });

  it('a second device is refused with ERR_DEVICE_NOT_BOUND until an admin resets the binding', async () => {
    const out = join(dir, 'other-device.bin');
    const env = { SLUICE_PASSWORD: PASSWORD, SLUICE_HARDWARE_HASH: DEVICE_B };
    const r = await as('device', ['pull', 'models', 'm1', '-o', out], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_DEVICE_NOT_BOUND');
    // The hint is the command that fixes it, not the API route.
    expect(r.stderr).toContain(`\`sluice user reset-device ${DEVICE}\``);
    expect(r.stderr).not.toContain('POST /users');
    expect(r.stderr).not.toContain(PASSWORD);
    expect(existsSync(out)).toBe(false);

    const reset = await as('admin', ['user', 'reset-device', DEVICE]);
    expect(reset.code, reset.stderr).toBe(0);
    // -o DIR puts the file at DIR/NAME.
    const outDir = mkdtempSync(join(dir, 'out-'));
    const after = await as('device', ['pull', 'models', 'm1', '-o', outDir], env);
    expect(after.code, after.stderr).toBe(0);
    expect(sha(join(outDir, 'm1'))).toBe(sha(model));
  });

  it('pull with a wrong password exits 1 and writes nothing', async () => {
    const out = join(dir, 'wrong-password.bin');
    const r = await as('device', ['pull', 'models', 'm1', '-o', out], {
      SLUICE_PASSWORD: 'wrong password, long enough',
      SLUICE_HARDWARE_HASH: DEVICE_B,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_UNAUTHORIZED');
    expect(existsSync(out)).toBe(false);
  });

  it('rm removes it: ls no longer lists it and pull says not found', async () => {
    const rm = await as('uploader', ['rm', 'models', 'm1']);
    expect(rm.code, rm.stderr).toBe(0);
    const ls = JSON.parse((await as('device', ['ls', 'models', '--json'])).stdout);
    expect(ls.resources).toEqual([]);
    const out = join(dir, 'deleted.bin');
    const r = await as('device', ['pull', 'models', 'm1', '-o', out], {
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: DEVICE_B,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(ERR_NOT_FOUND)');
    expect(existsSync(out)).toBe(false);
  });

  it('a bad resource name is refused before anything is uploaded', async () => {
    const r = await as('uploader', ['push', model, 'models', '--name', '..']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid name.*\((ERR_INVALID_ARG|ERR_BAD_REQUEST)\)/);
    const ls = JSON.parse((await as('uploader', ['ls', 'models', '--json'])).stdout);
    expect(ls.resources).toEqual([]);
  });

  it('doctor --server reports reachability, latency and clock skew', async () => {
    const r = await run(['doctor', '--server', url, '--json'], {
      env: { SLUICE_HARDWARE_HASH: DEVICE_A },
    });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.server).toMatchObject({ reachable: true, status: 200 });
    expect(report.server.latencyMs).toBeGreaterThanOrEqual(0);
    expect(Math.abs(report.server.clockSkewSeconds)).toBeLessThanOrEqual(2);
    expect(report.hardware).toMatchObject({ hash: DEVICE_A, source: 'env' });
    expect(report.warnings).toEqual([]);
    // The stored login's server is checked without --server.
    const stored = await as('admin', ['doctor']);
    expect(stored.code, stored.stderr).toBe(0);
    expect(stored.stdout).toMatch(/server\s+http:\/\/127\.0\.0\.1:\d+\/ reachable/);
  });

  it('doctor exits 1 when the server cannot be reached', async () => {
    const r = await run(['doctor', '--server', 'http://127.0.0.1:9', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).server).toMatchObject({ reachable: false });
  });

  it('a second serve on the same data directory fails clearly', async () => {
    const r = await run(['serve', '--config', config, '--data', dataDir, '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is in use by process ${serve.pid}`);
  });

  it('logout revokes and deletes the tokens; commands then ask for a login', async () => {
    const r = await as('uploader', ['logout']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(configOf('uploader'), 'auth.json'))).toBe(false);
    const ls = await as('uploader', ['ls', 'models']);
    expect(ls.code).toBe(1);
    expect(ls.stderr).toContain('sluice login');
    expect(ls.stderr).toContain('(ERR_NOT_LOGGED_IN)');
  });

  it('SIGTERM closes the server gracefully: exit 0, JSON logs without secrets', async () => {
    serve.kill('SIGTERM');
    const r = await serveDone;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(r.stdout).not.toContain(ADMIN_PASSWORD);
    expect(r.stdout).not.toContain(PASSWORD);
    expect(existsSync(join(dataDir, 'server.lock'))).toBe(false);
  });
});

describe('sluice serve --init-admin', () => {
  it('needs a password from the environment (or a terminal): there is no default', async () => {
    const r = await run(['serve', '--data', join(dir, 'no-password'), '--init-admin', ADMIN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SLUICE_ADMIN_PASSWORD');
    expect(existsSync(join(dir, 'no-password', 'sluice.db'))).toBe(false);
  });

  it('--init-only creates the admin and exits; a second admin is refused with ERR_CONFLICT', async () => {
    const fresh = join(dir, 'init-only');
    const env = { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    const r = await run(
      ['serve', '--config', config, '--data', fresh, '--init-admin', ADMIN, '--init-only'],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`created ApiAdmin ${ADMIN}`);
    expect(r.stdout).toBe('');
    const again = await run(
      [
        'serve',
        '--config',
        config,
        '--data',
        fresh,
        '--init-admin',
        'other@example.com',
        '--init-only',
      ],
      { env },
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^sluice: an ApiAdmin already exists.*\(ERR_CONFLICT\)$/m);
  });

  it('a password hash cost below the safe minimum is refused before anything is created', async () => {
    const weak = join(dir, 'weak-hash.json');
    writeFileSync(weak, JSON.stringify({ passwordHash: { logN: 4 } }));
    const data = join(dir, 'weak-hash');
    const r = await run(
      ['serve', '--config', weak, '--data', data, '--init-admin', ADMIN, '--init-only'],
      { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/scrypt/);
    expect(existsSync(join(data, 'sluice.db'))).toBe(false);
  });

  it('a password the server would not accept is refused with ERR_BAD_REQUEST', async () => {
    const r = await run(
      [
        'serve',
        '--config',
        config,
        '--data',
        join(dir, 'short'),
        '--init-admin',
        ADMIN,
        '--init-only',
      ],
      { env: { SLUICE_ADMIN_PASSWORD: 'short' } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_BAD_REQUEST');
  });
});

describe('after the server has stopped', () => {
  it('a command fails with ERR_NETWORK on one line', async () => {
    const r = await as('device', ['ls', 'models']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^sluice: cannot reach the sluice server at http:\/\/127\.0\.0\.1:\d+\/?: connection refused \(ERR_NETWORK\)\n$/,
    );
  });

  it('logout still deletes the local tokens and says the server was not told', async () => {
    const r = await as('admin', ['logout']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('could not be told');
    expect(existsSync(join(configOf('admin'), 'auth.json'))).toBe(false);
  });
});
