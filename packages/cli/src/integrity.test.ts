// Publisher signatures and integrity as a user meets them: `sluice serve` as a child process, and
// `keys`, `push` and `pull` as the built binary against it. A damaged small part, a trust list that
// names the signer or not, an unsigned resource, a publisher key the server does not know.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastHashConfig, finished, listeningUrl, type RunResult, run, start } from './test-cli.js';

const ADMIN = 'admin@example.com';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'c'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-integrity-'));
const dataDir = join(dir, 'data');
let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;
/** The public key `keys generate` printed for the uploader. */
let publisher = '';

afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGKILL');
    await serveDone;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A config directory per account (and per machine): the uploader's holds its publisher key. */
const configOf = (who: string) => join(dir, `config-${who}`);
const as = (who: string, args: string[], env: Record<string, string> = {}) =>
  run(args, { env: { SLUICE_CONFIG_DIR: configOf(who), SLUICE_PASSWORD: PASSWORD, ...env } });
const device = (args: string[], env: Record<string, string> = {}) =>
  as('device', args, { SLUICE_HARDWARE_HASH: HARDWARE, ...env });
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A fresh random file to push. */
function model(name: string, size = 300_000): string {
  const path = join(dir, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

/** Pulls models/NAME into a fresh directory: the result and what the directory holds after. */
async function pullInto(name: string, extra: string[] = [], env: Record<string, string> = {}) {
  const out = mkdtempSync(join(dir, 'out-'));
  const r = await device(['pull', 'models', name, '-o', join(out, name), ...extra], env);
  return { ...r, out, left: readdirSync(out) };
}

beforeAll(async () => {
  serve = start(
    [
      'serve',
      '--config',
      fastHashConfig(dir),
      '--data',
      dataDir,
      '--port',
      '0',
      '--init-admin',
      ADMIN,
    ],
    { env: { SLUICE_ADMIN_PASSWORD: PASSWORD } },
  );
  serveDone = finished(serve);
  url = await listeningUrl(serve);
  const login = (who: string, email: string) =>
    as(who, ['login', '--server', url, '--email', email]);
  expect((await login('admin', ADMIN)).code).toBe(0);
  for (const [email, role] of [
    [UPLOADER, 'ResourceUploader'],
    [DEVICE, 'Operator'],
  ]) {
    const r = await as('admin', ['user', 'create', email as string, '--role', role as string], {
      SLUICE_NEW_PASSWORD: PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
  }
  for (const [who, email] of [
    ['uploader', UPLOADER],
    ['unsigned', UPLOADER],
    ['device', DEVICE],
  ] as const) {
    expect((await login(who, email)).code).toBe(0);
  }
});

describe('publisher signatures and integrity through the CLI', () => {
  it('keys generate and register: the server lists the key; push signs with it by default', async () => {
    const gen = await as('uploader', ['keys', 'generate']);
    expect(gen.code, gen.stderr).toBe(0);
    publisher = gen.stdout.trim();
    const reg = await as('uploader', ['keys', 'register']);
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stderr).toContain(`registered ${publisher}`);
    const list = await as('uploader', ['keys', 'list', '--json']);
    expect(
      JSON.parse(list.stdout).publisherKeys.map((k: { publicKey: string }) => k.publicKey),
    ).toEqual([publisher]);
    const push = await as('uploader', ['push', model('signed.bin'), 'models', '--json']);
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ name: 'signed.bin', version: 1, publisher });
  });

  it('a signed push pulled with --trust naming its key succeeds and says who signed it', async () => {
    const trust = join(dir, 'trusted.pub');
    writeFileSync(trust, `# the publisher\n${publisher}\n`);
    const r = await pullInto('signed.bin', ['--trust', trust]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`signed by ${publisher}`);
    expect(sha(join(r.out, 'signed.bin'))).toBe(sha(join(dir, 'signed.bin')));
    const json = await pullInto('signed.bin', ['--json'], { SLUICE_TRUSTED_PUBLISHERS: publisher });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).publisher).toBe(publisher);
  });

  it('a trust list without the signer: exit 1 with ERR_UNTRUSTED_PUBLISHER and nothing written', async () => {
    const other = await as('device', ['keys', 'generate', '--sign-key', join(dir, 'other.key')]);
    const trust = join(dir, 'other.pub');
    writeFileSync(trust, other.stdout);
    const r = await pullInto('signed.bin', ['--trust', trust]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not on the trust list \(ERR_UNTRUSTED_PUBLISHER\)/);
    expect(r.left).toEqual([]);
  });

  it('an unsigned push is refused by a device with a trust list, and pulls without one as unsigned', async () => {
    // Another machine of the same uploader, without a publisher key.
    const push = await as('unsigned', ['push', model('plain.bin'), 'models']);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain('unsigned: no publisher key');
    const refused = await pullInto('plain.bin', [], { SLUICE_TRUSTED_PUBLISHERS: publisher });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(ERR_UNTRUSTED_PUBLISHER)');
    expect(refused.left).toEqual([]);
    const open = await pullInto('plain.bin');
    expect(open.code, open.stderr).toBe(0);
    expect(open.stderr).toContain('unsigned (no publisher signature)');
  });

  it('push with a publisher key not registered to the account: exit 1 with ERR_UNTRUSTED_PUBLISHER', async () => {
    const r = await as('uploader', [
      'push',
      model('stranger.bin'),
      'models',
      '--sign-key',
      join(dir, 'other.key'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(ERR_UNTRUSTED_PUBLISHER)');
    const ls = await as('device', ['ls', 'models', '--json']);
    expect(JSON.parse(ls.stdout).resources.map((x: { name: string }) => x.name)).not.toContain(
      'stranger.bin',
    );
  });

  it('one byte flipped in the middle of a stored small part: pull exits 1 with ERR_CHUNK_DIGEST and writes nothing', async () => {
    const blobs = join(dataDir, 'blobs');
    const before = new Set(readdirSync(blobs));
    const push = await as('unsigned', ['push', model('damaged.bin'), 'models']);
    expect(push.code, push.stderr).toBe(0);
    // The push stored two parts; the small one is the smaller file.
    const added = readdirSync(blobs).filter((n) => !before.has(n) && n !== '.tmp');
    expect(added).toHaveLength(2);
    const [smallBlobId] = added.sort(
      (a, b) => statSync(join(blobs, a)).size - statSync(join(blobs, b)).size,
    );
    const path = join(blobs, smallBlobId as string);
    const small = readFileSync(path);
    const at = small.length >> 1;
    small[at] = (small[at] as number) ^ 0x01;
    writeFileSync(path, small);
    const r = await pullInto('damaged.bin', ['--cache', join(dir, 'cache')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/small part: SHA-256 .* \(ERR_CHUNK_DIGEST\)/);
    expect(r.left).toEqual([]);
    expect(
      existsSync(join(dir, 'cache'))
        ? readdirSync(join(dir, 'cache')).filter((f) => f.endsWith('.big'))
        : [],
    ).toEqual([]);
  });
});
