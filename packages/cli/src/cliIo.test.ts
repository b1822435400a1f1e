// Files, messages and automation through the built binary against `sluice serve` on loopback:
// `-` for stdin/stdout, a trailing `/` for a directory, the login from the environment alone,
// and the messages of a missing directory, an unreachable server and a refusal.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bin,
  cliEnv,
  fastHashConfig,
  finished,
  listeningUrl,
  type RunResult,
  run,
  runOnTty,
  skipTty,
  start,
} from './test-cli.js';

const ADMIN = 'ops@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'c'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-io-test-'));
const config = fastHashConfig(dir);
/** An empty config directory: nothing `sluice login` stored. */
const noLogin = join(dir, 'no-login');
let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;

/** The environment of an account that never ran `sluice login`. */
const envOf = (email: string, password: string, extra: Record<string, string> = {}) => ({
  SLUICE_CONFIG_DIR: noLogin,
  SLUICE_SERVER: url,
  SLUICE_EMAIL: email,
  SLUICE_PASSWORD: password,
  ...extra,
});
const device = (extra: Record<string, string> = {}) =>
  envOf(DEVICE, PASSWORD, { SLUICE_HARDWARE_HASH: HARDWARE, ...extra });

/** Runs the CLI with stdout kept as bytes (run() decodes it as text). */
function runBinary(args: string[], env: Record<string, string>, input?: Buffer | string) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: cliEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // A command that refuses its arguments exits without reading stdin.
  child.stdin.on('error', () => {});
  child.stdin.end(input ?? '');
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout: Buffer.concat(out), stderr }));
  });
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const model = randomBytes(2 * 1024 * 1024 + 5);

beforeAll(async () => {
  mkdirSync(noLogin);
  // The admin's password from stdin: the flag the no-password message points at.
  serve = start(
    [
      'serve',
      '--config',
      config,
      '--data',
      join(dir, 'data'),
      '--port',
      '0',
      '--init-admin',
      ADMIN,
      '--password-stdin',
    ],
    { input: `${ADMIN_PASSWORD}\n` },
  );
  serveDone = finished(serve);
  url = await listeningUrl(serve);
});

afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGKILL');
    await serveDone;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('sluice serve', () => {
  it('warns on a data directory with no users, saying how to create the first admin', async () => {
    const empty = start(['serve', '--config', config, '--data', join(dir, 'empty'), '--port', '0']);
    const done = finished(empty);
    await listeningUrl(empty);
    empty.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: no users yet.*--init-admin EMAIL/);
  });

  it('without a password for --init-admin it points at --password-stdin, which it takes', async () => {
    const data = join(dir, 'init-only');
    const args = [
      'serve',
      '--config',
      config,
      '--data',
      data,
      '--init-admin',
      ADMIN,
      '--init-only',
    ];
    const none = await run(args);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('set SLUICE_ADMIN_PASSWORD, pass --password-stdin');
    const r = await run([...args, '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`created ApiAdmin ${ADMIN}`);
  });

  it('--password-stdin needs --init-admin (whose password it reads)', async () => {
    const r = await run(['serve', '--password-stdin', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sluice serve: --password-stdin needs --init-admin EMAIL');
  });
});

describe('a login from the environment alone', () => {
  it('user create checks the role before any password prompt and lists the valid ones', async () => {
    const r = await run(['user', 'create', 'x@example.com', '--role', 'Wizard'], {
      env: { SLUICE_CONFIG_DIR: noLogin, SLUICE_SERVER: url, SLUICE_EMAIL: ADMIN },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "unknown role 'Wizard': the roles are ApiAdmin, Admin, ResourceUploader, Validator, Operator",
    );
    const role = await run(['user', 'role', ADMIN, 'root']);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain("unknown role 'root'");
  });

  it('creates users with SLUICE_SERVER, SLUICE_EMAIL and SLUICE_PASSWORD, storing nothing', async () => {
    for (const [email, role] of [
      [UPLOADER, 'ResourceUploader'],
      [DEVICE, 'Operator'],
    ] as const) {
      const r = await run(['user', 'create', email, '--role', role, '--json'], {
        env: envOf(ADMIN, ADMIN_PASSWORD, { SLUICE_NEW_PASSWORD: PASSWORD }),
      });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).user).toMatchObject({ email, role });
    }
    expect(readdirSync(noLogin)).toEqual([]);
  });

  it('the environment wins over a stored login to another server', async () => {
    const stored = join(dir, 'stored-elsewhere');
    mkdirSync(stored);
    const other = JSON.stringify({ server: 'http://127.0.0.1:9/', email: 'someone@example.com' });
    writeFileSync(join(stored, 'config.json'), other);
    const r = await run(['ls', 'models'], {
      env: envOf(DEVICE, PASSWORD, { SLUICE_CONFIG_DIR: stored }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(stored, 'config.json'), 'utf8')).toBe(other);
  });

  it('--server is taken by every command that talks to a server', async () => {
    const env = { SLUICE_CONFIG_DIR: noLogin, SLUICE_EMAIL: DEVICE, SLUICE_PASSWORD: PASSWORD };
    const r = await run(['ls', 'models', '--server', url], { env });
    expect(r.code, r.stderr).toBe(0);
    for (const command of ['pull', 'push', 'batch', 'ls', 'rm', 'user', 'keys', 'passwd']) {
      const help = await run([command, '--help']);
      expect(help.stdout, command).toContain('--server URL');
    }
  });

  it('without a password source it says how to give one', async () => {
    const r = await run(['ls', 'models'], {
      env: { SLUICE_CONFIG_DIR: noLogin, SLUICE_SERVER: url, SLUICE_EMAIL: DEVICE },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`not logged in to ${url}/ as ${DEVICE}`);
    expect(r.stderr).toContain('SLUICE_PASSWORD');
  });
});

describe('- for stdin and stdout', () => {
  it('push - uploads stdin; pull -o - writes the verified plaintext to stdout only', async () => {
    const noName = await runBinary(['push', '-', 'models'], envOf(UPLOADER, PASSWORD), model);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toContain('push - needs --name NAME');

    const push = await runBinary(
      ['push', '-', 'models', '--name', 'm1', '--json'],
      envOf(UPLOADER, PASSWORD),
      model,
    );
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout.toString())).toMatchObject({ name: 'm1', size: model.length });

    const pull = await runBinary(['pull', 'models', 'm1', '-o', '-', '--sha256'], device());
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.length).toBe(model.length);
    expect(sha(pull.stdout)).toBe(sha(model));
    // Messages and the digest go to stderr; no file named `-` appears.
    expect(pull.stderr).toContain(`${sha(model)}  stdout`);
    expect(existsSync('-')).toBe(false);
  });

  it('a failed pull -o - writes nothing to stdout', async () => {
    const r = await runBinary(
      ['pull', 'models', 'm1', '-o', '-'],
      device({ SLUICE_PASSWORD: 'not the password, long enough' }),
    );
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    const json = await runBinary(['pull', 'models', 'm1', '-o', '-', '--json'], device());
    expect(json.code).toBe(2);
    expect(json.stdout.length).toBe(0);
  });

  it('a pull -o - whose big part fails its digest half-way writes nothing to stdout', async () => {
    const other = randomBytes(3 * 1024 * 1024);
    const push = await runBinary(
      ['push', '-', 'tampered', '--name', 't1'],
      envOf(UPLOADER, PASSWORD),
      other,
    );
    expect(push.code, push.stderr).toBe(0);
    // The big part is the only blob of a few MiB: flip a byte in its middle.
    const blobs = join(dir, 'data', 'blobs');
    const big = readdirSync(blobs, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
      .filter((path) => statSync(path).size > 2 * 1024 * 1024);
    expect(big).toHaveLength(1);
    const path = big[0] as string;
    const bytes = readFileSync(path);
    const mid = bytes.length >> 1;
    bytes.writeUInt8((bytes[mid] ?? 0) ^ 0xff, mid);
    writeFileSync(path, bytes);
    const r = await runBinary(['pull', 'tampered', 't1', '-o', '-'], device());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(ERR_CHUNK_DIGEST)');
    expect(r.stdout.length).toBe(0);
  });

  it('batch - reads its list from stdin', async () => {
    const out = join(dir, 'batch-out');
    const list = JSON.stringify([
      { folder: 'models', name: 'm1', to: join(out, 'a.bin') },
      { folder: 'models', name: 'm1', to: `${out}/` },
    ]);
    const r = await run(['batch', '-', '--json'], { env: device(), input: list });
    expect(r.code, r.stderr).toBe(0);
    expect(sha(readFileSync(join(out, 'a.bin')))).toBe(sha(model));
    expect(sha(readFileSync(join(out, 'm1')))).toBe(sha(model));
    const refused = await run(['batch', '-', '--password-stdin'], { env: device(), input: list });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('batch - reads the list from stdin');
  });
});

describe('- for encrypt and decrypt', () => {
  it('encrypt - seals stdin; decrypt BLOB - writes the verified plaintext to stdout', async () => {
    const key = join(dir, 'data.key');
    const blob = join(dir, 'stdin.sealed');
    const enc = await runBinary(['encrypt', '-', blob, '--key-file', key], {}, model);
    expect(enc.code, enc.stderr).toBe(0);
    expect(enc.stderr).toContain(`sealed stdin → ${blob}`);
    const dec = await runBinary(['decrypt', blob, '-', '--key-file', key], {});
    expect(dec.code, dec.stderr).toBe(0);
    expect(sha(dec.stdout)).toBe(sha(model));

    const wrongKey = join(dir, 'wrong.key');
    writeFileSync(wrongKey, randomBytes(32).toString('hex'), { mode: 0o600 });
    const wrong = await runBinary(['decrypt', blob, '-', '--key-file', wrongKey], {});
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('(ERR_BAD_DECRYPT)');
    expect(wrong.stdout.length).toBe(0);
  });
});

describe('output paths', () => {
  it('split OUTDIR/ creates OUTDIR; split and concat name a missing directory', async () => {
    const key = join(dir, 'split.key');
    const blob = join(dir, 'split.sealed');
    expect((await runBinary(['encrypt', '-', blob, '--key-file', key], {}, model)).code).toBe(0);
    const missing = join(dir, 'no-such-dir');
    const refused = await run(['split', blob, missing]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `sluice: cannot write ${join(missing, 'split.sealed.small')}: directory ${missing} does not exist (ERR_IO)\n`,
    );
    const parts = join(dir, 'parts', 'here');
    const split = await run(['split', blob, `${parts}/`]);
    expect(split.code, split.stderr).toBe(0);
    const joinedPath = join(missing, 'joined');
    const concat = await run([
      'concat',
      join(parts, 'split.sealed.small'),
      join(parts, 'split.sealed.big'),
      joinedPath,
    ]);
    expect(concat.code).toBe(1);
    expect(concat.stderr).toContain(
      `cannot write ${joinedPath}: directory ${missing} does not exist`,
    );
    const back = join(dir, 'joined.sealed');
    const ok = await run([
      'concat',
      join(parts, 'split.sealed.small'),
      join(parts, 'split.sealed.big'),
      back,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(sha(readFileSync(back))).toBe(sha(readFileSync(blob)));
  });

  it('-o DIR/ writes DIR/NAME, creating DIR', async () => {
    const target = join(dir, 'new', 'dir');
    const r = await run(['pull', 'models', 'm1', '-o', `${target}/`], { env: device() });
    expect(r.code, r.stderr).toBe(0);
    expect(sha(readFileSync(join(target, 'm1')))).toBe(sha(model));
  });

  it('a missing parent directory is named, before any transfer', async () => {
    const path = join(dir, 'missing', 'x.bin');
    const r = await run(['pull', 'models', 'm1', '-o', path], { env: device() });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sluice: cannot write ${path}: directory ${join(dir, 'missing')} does not exist (ERR_IO)\n`,
    );
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });
});

describe('messages', () => {
  it('an unreachable server is named by the URL the user gave', async () => {
    const closed = await freePort();
    const server = `http://127.0.0.1:${closed}`;
    const r = await run(['ls', 'models'], {
      env: { ...envOf(DEVICE, PASSWORD), SLUICE_SERVER: server },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sluice: cannot reach the sluice server at ${server}: connection refused (ERR_NETWORK)\n`,
    );
  });

  it('a refusal for the role names the command that changes it', async () => {
    const file = join(dir, 'by-device.bin');
    writeFileSync(file, 'not for an Operator');
    const r = await run(['push', file, 'models'], { env: device() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`\`sluice user role ${DEVICE} ROLE\``);
    expect(r.stderr).toContain('(ERR_FORBIDDEN)');
  });

  it('a saved login that was ended says to log in again', async () => {
    const saved = join(dir, 'saved-device');
    const login = await run(['login', '--server', url, '--email', DEVICE], {
      env: { SLUICE_CONFIG_DIR: saved, SLUICE_PASSWORD: PASSWORD },
    });
    expect(login.code, login.stderr).toBe(0);
    // A role change ends every session of the account.
    const role = await run(['user', 'role', DEVICE, 'Validator'], {
      env: envOf(ADMIN, ADMIN_PASSWORD),
    });
    expect(role.code, role.stderr).toBe(0);
    const r = await run(['ls', 'models'], { env: { SLUICE_CONFIG_DIR: saved } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'sluice: the saved login has expired or was ended: run `sluice login` again, ' +
        'or give the password in SLUICE_PASSWORD (ERR_NOT_LOGGED_IN)\n',
    );
    // With the password at hand, the CLI logs in again by itself.
    const again = await run(['ls', 'models'], {
      env: { SLUICE_CONFIG_DIR: saved, SLUICE_PASSWORD: PASSWORD },
    });
    expect(again.code, again.stderr).toBe(0);
  });

  it.skipIf(skipTty)('the password prompt names the account', async () => {
    const r = await runOnTty(['ls', 'models'], {
      env: { SLUICE_CONFIG_DIR: noLogin, SLUICE_SERVER: url, SLUICE_EMAIL: DEVICE },
      answers: [[/password for device@example\.com: /, PASSWORD]],
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^m1\s+v1\s/m);
    expect(r.stdout).not.toContain(PASSWORD);
  });
});

describe('the server of these tests', () => {
  it('gave no no-users warning (its admin came from --password-stdin) and stops cleanly', async () => {
    serve.kill('SIGTERM');
    const r = await serveDone;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`created ApiAdmin ${ADMIN}`);
    expect(r.stderr).not.toContain('no users yet');
  });
});

/** A loopback port nothing listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => done(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
