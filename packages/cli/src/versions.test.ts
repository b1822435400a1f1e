// Versions and rollback as a user types them: `sluice serve --keep 3` as a child process, and
// push, ls --versions, pull --version, release, rm --version / --yes as the built binary.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastHashConfig, finished, listeningUrl, type RunResult, run, start } from './test-cli.js';

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HW = 'e5'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-versions-test-'));
const config = fastHashConfig(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;

afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGTERM');
    await serveDone;
  }
});

const configOf = (who: string) => join(dir, `config-${who}`);
const as = (who: string, args: string[], env: Record<string, string> = {}) =>
  run(args, { env: { SLUICE_CONFIG_DIR: configOf(who), ...env } });
const device = (args: string[]) =>
  as('device', args, { SLUICE_PASSWORD: PASSWORD, SLUICE_HARDWARE_HASH: HW });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The model file of version `i` (distinct bytes each). */
const models = [0, 1, 2, 3, 4, 5].map((i) => {
  const path = join(dir, `model-${i}.bin`);
  writeFileSync(path, randomBytes(200_000 + i));
  return path;
});

async function pushModel(i: number, ...extra: string[]): Promise<number> {
  const r = await as('uploader', [
    'push',
    models[i] ?? '',
    'models',
    '--name',
    'm.onnx',
    '--json',
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).version;
}

/** Pulls into a fresh path; resolves with the version pulled and whether it holds model `i`. */
async function pulled(args: string[] = []): Promise<{ version: number; sha: string }> {
  const out = join(dir, `out-${randomBytes(4).toString('hex')}.bin`);
  const r = await device(['pull', 'models', 'm.onnx', '-o', out, '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return { version: JSON.parse(r.stdout).version, sha: sha(readFileSync(out)) };
}

const modelSha = (i: number) => sha(readFileSync(models[i] ?? ''));

beforeAll(async () => {
  serve = start(
    [
      'serve',
      '--config',
      config,
      '--data',
      join(dir, 'data'),
      '--port',
      '0',
      '--keep',
      '3',
      '--init-admin',
      ADMIN,
    ],
    { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
  );
  serveDone = finished(serve);
  url = await listeningUrl(serve);
  const admin = await as('admin', ['login', '--server', url, '--email', ADMIN], {
    SLUICE_PASSWORD: ADMIN_PASSWORD,
  });
  expect(admin.code, admin.stderr).toBe(0);
  for (const [email, role, who] of [
    [UPLOADER, 'ResourceUploader', 'uploader'],
    [DEVICE, 'Operator', 'device'],
  ] as const) {
    const r = await as('admin', ['user', 'create', email, '--role', role], {
      SLUICE_NEW_PASSWORD: PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
    const login = await as(who, ['login', '--server', url, '--email', email], {
      SLUICE_PASSWORD: PASSWORD,
    });
    expect(login.code, login.stderr).toBe(0);
  }
});

describe('sluice versions and rollback', () => {
  it('push releases each new version; ls --versions lists them with the released one marked', async () => {
    expect(await pushModel(0)).toBe(1);
    expect(await pushModel(1)).toBe(2);
    const ls = await device(['ls', 'models', '--versions']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^m\.onnx\s+ v1\s+\S+ \S+\s+\S+\s+uploader@example\.com$/m);
    expect(ls.stdout).toMatch(/^m\.onnx\s+\*v2\s/m);
    const json = JSON.parse(
      (await device(['ls', 'models', 'm.onnx', '--versions', '--json'])).stdout,
    );
    expect(json.resources[0]).toMatchObject({ name: 'm.onnx', current: 2 });
    expect(json.resources[0].versions).toHaveLength(2);
    const plain = await device(['ls', 'models']);
    expect(plain.stdout).toMatch(/^m\.onnx\s+v2 \(2\)\s.*\sv2$/m);
    expect(await pulled()).toEqual({ version: 2, sha: modelSha(1) });
    expect(await pulled(['--version', '1'])).toEqual({ version: 1, sha: modelSha(0) });
  });

  it('release rolls the fleet back, and forward again', async () => {
    const back = await as('uploader', ['release', 'models', 'm.onnx', '1']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toContain('released models/m.onnx v1 (was v2)');
    expect(back.stderr).toContain('sluice release models m.onnx 2');
    expect(await pulled()).toEqual({ version: 1, sha: modelSha(0) });
    const forward = await as('uploader', ['release', 'models', 'm.onnx', 'v2', '--json']);
    expect(JSON.parse(forward.stdout)).toEqual({
      folder: 'models',
      name: 'm.onnx',
      current: 2,
      previous: 1,
    });
    expect(await pulled()).toEqual({ version: 2, sha: modelSha(1) });
  });

  it('a device may not release; bad or missing versions are refused clearly', async () => {
    const r = await device(['release', 'models', 'm.onnx', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_FORBIDDEN');
    const bad = await as('uploader', ['release', 'models', 'm.onnx', 'latest']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('VERSION must be a version number');
    const missing = await as('uploader', ['release', 'models', 'm.onnx', '9']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no version 9');
    const out = join(dir, 'never.bin');
    const pull = await device(['pull', 'models', 'm.onnx', '--version', '9', '-o', out]);
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain('ERR_NOT_FOUND');
    expect(existsSync(out)).toBe(false);
    expect((await device(['pull', 'models', 'm.onnx', '--version', '0'])).code).toBe(2);
  });

  it('push --no-release keeps devices on the released version', async () => {
    const r = await as('uploader', [
      'push',
      models[2] ?? '',
      'models',
      '--name',
      'm.onnx',
      '--no-release',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(await pulled()).toEqual({ version: 2, sha: modelSha(1) });
    expect(await pulled(['--version', '3'])).toEqual({ version: 3, sha: modelSha(2) });
  });

  it('batch pins a version per entry; the others get the released one', async () => {
    const list = join(dir, 'fleet.yaml');
    writeFileSync(
      list,
      '- {folder: models, name: m.onnx, to: b-pinned.bin, version: 3}\n' +
        '- {folder: models, name: m.onnx, to: b-released.bin}\n',
    );
    const r = await device(['batch', list, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      lines
        .slice(0, 2)
        .map((l) => [l.to, l.version])
        .sort(),
    ).toEqual([
      [join(dir, 'b-pinned.bin'), 3],
      [join(dir, 'b-released.bin'), 2],
    ]);
    expect(sha(readFileSync(join(dir, 'b-pinned.bin')))).toBe(modelSha(2));
    writeFileSync(list, '- {folder: models, name: m.onnx, version: latest}\n');
    const bad = await device(['batch', list]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("'version' must be a version number");
  });

  it('rm refuses a resource with several versions without --yes, and the released version', async () => {
    const all = await as('uploader', ['rm', 'models', 'm.onnx']);
    expect(all.code).toBe(2);
    expect(all.stderr).toContain('has 3 versions (v1, v2, v3): give --yes');
    const released = await as('uploader', ['rm', 'models', 'm.onnx', '--version', '2']);
    expect(released.code).toBe(2);
    expect(released.stderr).toContain('v2 is the released version');
    expect(await pulled()).toEqual({ version: 2, sha: modelSha(1) });
    const one = await as('uploader', ['rm', 'models', 'm.onnx', '--version', '3']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stderr).toContain('removed models/m.onnx v3; released: v2');
    const gone = await device(['pull', 'models', 'm.onnx', '--version', '3', '-o', join(dir, 'x')]);
    expect(gone.code).toBe(1);
    const forced = await as('uploader', ['rm', 'models', 'm.onnx', '--version', '2', '--yes']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain('released: v1');
    expect(await pulled()).toEqual({ version: 1, sha: modelSha(0) });
  });

  it('serve --keep 3 deletes the oldest versions after a push, never the released one', async () => {
    // Now: v1 (released). Numbers 2 and 3 are spent.
    expect(await pushModel(3, '--no-release')).toBe(4);
    expect(await pushModel(4, '--no-release')).toBe(5);
    expect(await pushModel(5, '--no-release')).toBe(6);
    const json = JSON.parse(
      (await device(['ls', 'models', 'm.onnx', '--versions', '--json'])).stdout,
    );
    // The newest three and the released v1, which retention never deletes.
    expect(json.resources[0].versions.map((v: { version: number }) => v.version)).toEqual([
      1, 4, 5, 6,
    ]);
    expect(await pushModel(0)).toBe(7);
    const after = JSON.parse(
      (await device(['ls', 'models', 'm.onnx', '--versions', '--json'])).stdout,
    );
    expect(after.resources[0].versions.map((v: { version: number }) => v.version)).toEqual([
      5, 6, 7,
    ]);
    expect(after.resources[0].current).toBe(7);
  });

  it('rm --yes deletes every version', async () => {
    const r = await as('uploader', ['rm', 'models', 'm.onnx', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const ls = JSON.parse((await device(['ls', 'models', '--json'])).stdout);
    expect(ls.resources).toEqual([]);
  });

  it('serve refuses a --keep that is not a number of versions', async () => {
    const r = await run(['serve', '--data', join(dir, 'other'), '--port', '0', '--keep', 'two']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--keep must be a whole number of versions');
  });
});
