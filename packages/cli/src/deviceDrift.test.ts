// Drift-tolerant binding through the built binary: `sluice serve` with the binding flags, devices
// simulated with SLUICE_HARDWARE_FACTORS. One replaced disk → the pull works and the server logs
// one line naming the factor; two changed factors → ERR_DEVICE_NOT_BOUND, nothing written, until
// `sluice user reset-device`.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastHashConfig, finished, listeningUrl, type RunResult, run, start } from './test-cli.js';

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const BOX = {
  'system.uuid': '0b2e6f1c-9d3a-4e57-8c21-6a5f0d4b3e29',
  'board.serial': 'PGFSR0012345678',
  'cpu.model': 'ARM Cortex-A78AE',
  'cpu.cores': 8,
  'disk.serial': 'NVME-2A41C3',
  'memory.gib': 32,
  'os.machineId': '6f1d2c3b4a5e4f60718293a4b5c6d7e8',
};
const NEW_DISK = { ...BOX, 'disk.serial': 'NVME-77F0E9' };
const NEW_BOARD_AND_OS = {
  ...NEW_DISK,
  'board.serial': 'PGFSR0099999999',
  'os.machineId': 'e'.repeat(32),
};

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-drift-'));
const dataDir = join(dir, 'data');
const out = join(dir, 'out');
mkdirSync(out);
let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;
const serverLog: string[] = [];

afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGTERM');
    await serveDone;
  }
  rmSync(dir, { recursive: true, force: true });
});

const as = (who: string, args: string[], env: Record<string, string> = {}) =>
  run(args, { env: { SLUICE_CONFIG_DIR: join(dir, `config-${who}`), ...env } });
const device = (factors: object, args: string[]) =>
  as('device', args, {
    SLUICE_PASSWORD: PASSWORD,
    SLUICE_HARDWARE_FACTORS: JSON.stringify(factors),
  });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const events = (event: string) =>
  serverLog
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((l) => l.event === event);

const model = randomBytes(2 * 1024 * 1024 + 99);

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
      '--binding-drift-cooldown',
      '0',
    ],
    { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD, SLUICE_BINDING_MAX_DRIFT: '1' } },
  );
  serve.stdout?.on('data', (d: Buffer) => serverLog.push(String(d)));
  serveDone = finished(serve);
  url = await listeningUrl(serve);
  const admin = await as('admin', ['login', '--server', url, '--email', ADMIN], {
    SLUICE_PASSWORD: ADMIN_PASSWORD,
  });
  expect(admin.code, admin.stderr).toBe(0);
  for (const [email, role] of [
    [UPLOADER, 'ResourceUploader'],
    [DEVICE, 'Operator'],
  ] as const) {
    const r = await as('admin', ['user', 'create', email, '--role', role], {
      SLUICE_NEW_PASSWORD: PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
  }
  for (const [who, email] of [
    ['uploader', UPLOADER],
    ['device', DEVICE],
  ] as const) {
    const r = await as(who, ['login', '--server', url, '--email', email], {
      SLUICE_PASSWORD: PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
  }
  writeFileSync(join(dir, 'model.bin'), model);
  const push = await as('uploader', ['push', join(dir, 'model.bin'), 'models', '--name', 'm1']);
  expect(push.code, push.stderr).toBe(0);
});

describe('a drifted device through `sluice pull`', () => {
  it('binds, then is accepted with its disk replaced; the server logs the factor by name only', async () => {
    const first = await device(BOX, ['pull', 'models', 'm1', '-o', join(out, 'first.bin')]);
    expect(first.code, first.stderr).toBe(0);
    expect(events('device.bound')).toHaveLength(1);
    const after = await device(NEW_DISK, ['pull', 'models', 'm1', '-o', join(out, 'new-disk.bin')]);
    expect(after.code, after.stderr).toBe(0);
    expect(sha(readFileSync(join(out, 'new-disk.bin')))).toBe(sha(model));
    const drifted = events('device.drifted');
    expect(drifted).toHaveLength(1);
    expect(drifted[0]).toMatchObject({
      changed: ['disk.serial'],
      missing: [],
      matched: 6,
      of: 7,
      required: 6,
    });
    const log = serverLog.join('');
    expect(log).not.toMatch(/nvme-77f0e9|nvme-2a41c3/i);
  });

  it('two changed factors: ERR_DEVICE_NOT_BOUND, no file; after reset-device it binds anew', async () => {
    const to = join(out, 'refused.bin');
    const refused = await device(NEW_BOARD_AND_OS, ['pull', 'models', 'm1', '-o', to]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ERR_DEVICE_NOT_BOUND');
    expect(existsSync(to)).toBe(false);
    expect(events('device.refused').at(-1)).toMatchObject({ reason: 'drift', matched: 5, of: 7 });
    const reset = await as('admin', ['user', 'reset-device', DEVICE]);
    expect(reset.code, reset.stderr).toBe(0);
    // The reset ended the device's sessions: it logs in again, then binds the new hardware.
    const login = await as('device', ['login', '--server', url, '--email', DEVICE], {
      SLUICE_PASSWORD: PASSWORD,
    });
    expect(login.code, login.stderr).toBe(0);
    const again = await device(NEW_BOARD_AND_OS, ['pull', 'models', 'm1', '-o', to]);
    expect(again.code, again.stderr).toBe(0);
    expect(sha(readFileSync(to))).toBe(sha(model));
  });

  it('a malformed SLUICE_HARDWARE_FACTORS fails before anything is sent, naming the variable', async () => {
    const r = await as('device', ['pull', 'models', 'm1', '-o', join(out, 'bad.bin')], {
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_FACTORS: '{"hostname": "vm-1"}',
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('SLUICE_HARDWARE_FACTORS must be a JSON object');
    expect(existsSync(join(out, 'bad.bin'))).toBe(false);
  });
});

describe('sluice doctor', () => {
  it('says how many factor digests a pull sends, and none when the hash is chosen', async () => {
    const withFactors = await run(['doctor', '--json'], {
      env: { SLUICE_HARDWARE_FACTORS: JSON.stringify(BOX) },
    });
    expect(withFactors.code, withFactors.stderr).toBe(0);
    expect(JSON.parse(withFactors.stdout).hardware).toMatchObject({
      source: 'env',
      factorDigests: 7,
    });
    const chosen = await run(['doctor'], { env: { SLUICE_HARDWARE_HASH: 'c'.repeat(64) } });
    expect(chosen.stdout).toContain('(from SLUICE_HARDWARE_HASH)');
    expect(chosen.stdout).toMatch(/factor digests {2}none sent/);
  });
});

describe('sluice serve binding settings', () => {
  it('refuses a minimum match below 3, naming the flag', async () => {
    const r = await run([
      'serve',
      '--data',
      join(dir, 'data-bad'),
      '--port',
      '0',
      '--binding-min-match',
      '2',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/deviceBinding\.minMatch must be an integer ≥ 3.*--binding-min-match/);
    const env = await run(['serve', '--data', join(dir, 'data-bad'), '--port', '0'], {
      env: { SLUICE_BINDING_MAX_DRIFT: 'one' },
    });
    expect(env.code).not.toBe(0);
    expect(env.stderr).toContain("SLUICE_BINDING_MAX_DRIFT must be a whole number ≥ 0, got 'one'");
  });
});
