import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SluiceError } from '@sluice/core';
import { afterAll, describe, expect, it } from 'vitest';
import { readServeConfigFile } from './configFile.js';
import { describeStores } from './describeStores.js';
import { explainSettingError } from './explainSettingError.js';
import { resolveServeSettings } from './resolveServeSettings.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-serve-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RW = { accessKeyId: 'RWKEY', secretAccessKey: 'rw-secret-from-file' };
const READ = { accessKeyId: 'ROKEY', secretAccessKey: 'ro-secret-from-file' };
const FILE_SETTINGS = {
  storage: {
    kind: 's3',
    endpoint: 'http://file-host:7480',
    region: 'eu-1',
    bucket: 'file-store',
    credentials: RW,
  },
  cdn: {
    kind: 's3',
    endpoint: 'http://file-cdn:7480',
    region: 'eu-1',
    bucket: 'file-cdn',
    prefix: 'big',
    chunkSize: 1048576,
    downloader: READ,
    uploader: RW,
  },
  shutdownGraceMs: 5000,
};

let n = 0;
function configFile(content: unknown, mode = 0o600): string {
  const path = join(dir, `config-${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  chmodSync(path, mode);
  return path;
}

describe('resolveServeSettings', () => {
  it('is the embedded default when nothing is set', () => {
    const s = resolveServeSettings({ env: {}, flags: {} });
    expect(s).toEqual({ origins: new Map() });
    expect(describeStores(s, '/d')).toEqual([
      'records:     /d/sluice.db (embedded SQLite)',
      'small parts: /d/blobs (file storage)',
      'big parts:   this API over HTTP (GET /resources/{folder}/{name}/big)',
    ]);
  });

  it('takes the config file as createServer options', () => {
    const file = configFile(FILE_SETTINGS);
    const { origins, ...options } = resolveServeSettings({ file, env: {}, flags: {} });
    expect(options).toEqual(FILE_SETTINGS);
    expect(origins.get('cdn.downloader')).toBe(`--config ${file}`);
  });

  it('the environment overrides the file, and flags override the environment', () => {
    const file = configFile(FILE_SETTINGS);
    const env = {
      SLUICE_S3_ENDPOINT: 'http://env-host:1',
      SLUICE_S3_BUCKET: 'env-store',
      SLUICE_S3_ACCESS_KEY: 'ENVKEY',
      SLUICE_S3_SECRET_KEY: 'env-secret',
      SLUICE_CDN_PREFIX: 'env-prefix',
      SLUICE_CDN_READ_ACCESS_KEY: '', // empty is unset
    };
    const s = resolveServeSettings({
      file,
      env,
      flags: { s3Bucket: 'flag-store', cdnBucket: 'flag-cdn', shutdownGrace: '1.5' },
    });
    const envKeys = { accessKeyId: 'ENVKEY', secretAccessKey: 'env-secret' };
    expect(s.storage).toEqual({
      kind: 's3',
      endpoint: 'http://env-host:1',
      region: 'eu-1',
      bucket: 'flag-store',
      credentials: envKeys,
    });
    expect(s.cdn).toEqual({
      ...FILE_SETTINGS.cdn,
      endpoint: 'http://env-host:1',
      bucket: 'flag-cdn',
      prefix: 'env-prefix',
      uploader: envKeys,
    });
    expect(s.shutdownGraceMs).toBe(1500);
    expect(s.origins.get('storage.bucket')).toBe('--s3-bucket');
    expect(s.origins.get('storage.endpoint')).toBe('SLUICE_S3_ENDPOINT');
    expect(s.origins.get('cdn.downloader')).toBe(`--config ${file}`);
  });

  it('from the environment alone: the CDN shares endpoint, region and write keys; region defaults', () => {
    const s = resolveServeSettings({
      env: {
        SLUICE_S3_ENDPOINT: 'http://127.0.0.1:7480',
        SLUICE_S3_BUCKET: 'store',
        SLUICE_S3_ACCESS_KEY: 'A',
        SLUICE_S3_SECRET_KEY: 'S',
        SLUICE_CDN_BUCKET: 'cdn',
        SLUICE_CDN_READ_ACCESS_KEY: 'R',
        SLUICE_CDN_READ_SECRET_KEY: 'RS',
      },
      flags: {},
    });
    expect(s.cdn).toEqual({
      kind: 's3',
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      bucket: 'cdn',
      downloader: { accessKeyId: 'R', secretAccessKey: 'RS' },
      uploader: { accessKeyId: 'A', secretAccessKey: 'S' },
    });
    expect(describeStores(s, '/d')).toEqual([
      'records:     /d/sluice.db (embedded SQLite)',
      'small parts: S3 http://127.0.0.1:7480 bucket store',
      'big parts:   S3 CDN http://127.0.0.1:7480 bucket cdn (devices get read keys, uploaders write keys)',
    ]);
  });

  it('never hands the write keys to devices: an S3 CDN without read keys is refused', () => {
    expect(() =>
      resolveServeSettings({
        env: { SLUICE_S3_ACCESS_KEY: 'A', SLUICE_S3_SECRET_KEY: 'S', SLUICE_CDN_BUCKET: 'cdn' },
        flags: { s3Endpoint: 'http://h:1' },
      }),
    ).toThrow(/cdn\.downloader .*SLUICE_CDN_READ_ACCESS_KEY/);
  });

  it('refuses half a key pair, and S3 settings without any bucket, naming the variable', () => {
    expect(() =>
      resolveServeSettings({ env: { SLUICE_S3_ACCESS_KEY: 'A' }, flags: { s3Bucket: 'b' } }),
    ).toThrow('SLUICE_S3_ACCESS_KEY and SLUICE_S3_SECRET_KEY must be set together');
    expect(() =>
      resolveServeSettings({ env: { SLUICE_S3_ENDPOINT: 'http://h:1' }, flags: {} }),
    ).toThrow(/^SLUICE_S3_ENDPOINT is set but no bucket is/);
    // Read keys without a CDN bucket would be silently unused.
    expect(() =>
      resolveServeSettings({
        env: { SLUICE_CDN_READ_ACCESS_KEY: 'R', SLUICE_CDN_READ_SECRET_KEY: 'RS' },
        flags: { s3Bucket: 'b' },
      }),
    ).toThrow(
      'SLUICE_CDN_READ_ACCESS_KEY/SLUICE_CDN_READ_SECRET_KEY is set but no bucket is: set SLUICE_CDN_BUCKET',
    );
    expect(() => resolveServeSettings({ env: {}, flags: { shutdownGrace: '-1' } })).toThrow(
      '--shutdown-grace must be a number of seconds',
    );
  });
});

describe('drain delay and metrics token', () => {
  it("--drain-delay is seconds over the file's drainDelayMs; the token comes from the environment only", () => {
    const file = configFile({ drainDelayMs: 2000 });
    const token = 'metrics-token-from-the-environment';
    expect(resolveServeSettings({ file, env: {}, flags: {} }).drainDelayMs).toBe(2000);
    const s = resolveServeSettings({
      file,
      env: { SLUICE_METRICS_TOKEN: token },
      flags: { drainDelay: '0.25' },
    });
    expect(s.drainDelayMs).toBe(250);
    expect(s.origins.get('drainDelayMs')).toBe('--drain-delay');
    expect(s.metricsToken).toBe(token);
    expect(s.origins.get('metricsToken')).toBe('SLUICE_METRICS_TOKEN');
    expect(() => resolveServeSettings({ env: {}, flags: { drainDelay: 'soon' } })).toThrow(
      "--drain-delay must be a number of seconds ≥ 0, got 'soon'",
    );
    expect(() => readServeConfigFile(configFile({ metricsToken: token }))).toThrow(
      "unknown setting 'metricsToken'",
    );
  });
});

describe('passwordHash in the config file', () => {
  it('sets the scrypt cost of password hashes over the default r and p', () => {
    const file = configFile({ passwordHash: { logN: 12 } });
    const s = resolveServeSettings({ file, env: {}, flags: {} });
    expect(s.scrypt).toEqual({ logN: 12, r: 8, p: 1 });
    expect(resolveServeSettings({ env: {}, flags: {} }).scrypt).toBeUndefined();
    const weak = configFile({ passwordHash: { logN: 4 } });
    expect(() => resolveServeSettings({ file: weak, env: {}, flags: {} })).toThrow(
      /^passwordHash\.logN: .*scrypt/,
    );
    expect(() => readServeConfigFile(configFile({ passwordHash: { logN: 12, r: 1 } }))).toThrow(
      "unknown setting 'passwordHash.r'",
    );
  });
});

describe('trustProxy', () => {
  it('comes from --trust-proxy, else from the config file, with its origin', () => {
    const file = configFile({ trustProxy: ['10.0.0.0/8', 'loopback'] });
    const fromFile = resolveServeSettings({ file, env: {}, flags: {} });
    expect(fromFile.trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
    expect(fromFile.origins.get('trustProxy')).toBe(`--config ${file}`);
    const fromFlag = resolveServeSettings({ file, env: {}, flags: { trustProxy: '127.0.0.1' } });
    expect(fromFlag.trustProxy).toBe('127.0.0.1');
    expect(fromFlag.origins.get('trustProxy')).toBe('--trust-proxy');
    expect(resolveServeSettings({ env: {}, flags: {} }).trustProxy).toBeUndefined();
  });
});

describe('TLS files and the log level', () => {
  it('come from the flag, else the environment, else the file, with their origin', () => {
    const cert = join(dir, 'c.pem');
    const key = join(dir, 'k.pem');
    writeFileSync(cert, 'CERT BYTES');
    writeFileSync(key, 'KEY BYTES');
    const file = configFile({ tlsCert: '/nowhere/c.pem', tlsKey: key, logLevel: 'warn' });
    const s = resolveServeSettings({
      file,
      env: { SLUICE_TLS_CERT: cert, SLUICE_LOG_LEVEL: 'debug' },
      flags: { logLevel: 'trace' },
    });
    expect(s.tls).toEqual({ cert: Buffer.from('CERT BYTES'), key: Buffer.from('KEY BYTES') });
    expect(s.origins.get('tls.cert')).toBe('SLUICE_TLS_CERT');
    expect(s.origins.get('tls.key')).toBe(`--config ${file}`);
    expect(s.logLevel).toBe('trace');
    expect(s.origins.get('logger.level')).toBe('--log-level');
    const fromFile = resolveServeSettings({
      file: configFile({ logLevel: 'warn' }),
      env: {},
      flags: {},
    });
    expect(fromFile.logLevel).toBe('warn');
    expect(fromFile.tls).toBeUndefined();
  });

  it('refuses half a pair and an unreadable file, naming where the path came from', () => {
    expect(() => resolveServeSettings({ env: { SLUICE_TLS_KEY: '/k.pem' }, flags: {} })).toThrow(
      'only the key is set (from SLUICE_TLS_KEY)',
    );
    const file = configFile({
      tlsCert: join(dir, 'missing.pem'),
      tlsKey: join(dir, 'missing.pem'),
    });
    expect(() => resolveServeSettings({ file, env: {}, flags: {} })).toThrow(
      `cannot read the TLS certificate ${join(dir, 'missing.pem')} (from --config ${file}): ENOENT`,
    );
  });
});

describe('timeouts in the config file', () => {
  it('are handed to createServer with their origin; an unknown one is refused by name', () => {
    const t = { headersMs: 10_000, bodyGraceMs: 5000, bodyMinBytesPerSecond: 4096 };
    const file = configFile({ timeouts: t });
    const s = resolveServeSettings({ file, env: {}, flags: {} });
    expect(s.timeouts).toEqual(t);
    expect(s.origins.get('timeouts')).toBe(`--config ${file}`);
    expect(() => readServeConfigFile(configFile({ timeouts: { bodyMs: 1 } }))).toThrow(
      "unknown setting 'timeouts.bodyMs'",
    );
    const origins = new Map([['timeouts', `--config ${file}`]]);
    const named = explainSettingError(
      new SluiceError('ERR_INVALID_ARG', 'timeouts.idleMs must be a positive integer', {
        field: 'timeouts.idleMs',
      }),
      origins,
    );
    expect((named as Error).message).toBe(
      `timeouts.idleMs must be a positive integer (from --config ${file})`,
    );
  });
});

describe('readServeConfigFile', () => {
  it('refuses a file holding a secret that group or others may read, without quoting it', () => {
    const path = configFile(FILE_SETTINGS, 0o644);
    let err: unknown;
    try {
      readServeConfigFile(path);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_INSECURE_FILE' });
    expect((err as Error).message).toContain(`chmod 600 ${path}`);
    expect((err as Error).message).toContain('mode 0644');
    expect((err as Error).message).not.toContain('secret-from-file');
    // Without a secret the mode does not matter.
    expect(readServeConfigFile(configFile({ shutdownGraceMs: 1 }, 0o644))).toEqual({
      shutdownGraceMs: 1,
    });
  });

  it('names an unknown setting and the place of a JSON error, never the text around it', () => {
    expect(() =>
      readServeConfigFile(configFile({ storage: { kind: 's3', buckett: 'x' } })),
    ).toThrow("unknown setting 'storage.buckett'");
    const broken = configFile('{\n  "cdn": {"secretAccessKey": "hunter2-secret" oops}\n}');
    expect(() => readServeConfigFile(broken)).toThrow(/is not valid JSON at line 2, column \d+$/);
    expect(() => readServeConfigFile(join(dir, 'missing.json'))).toThrow(
      /cannot read config file .*missing\.json: ENOENT/,
    );
  });
});

describe('explainSettingError', () => {
  it('adds where the named setting came from, or where it can be set', () => {
    const origins = new Map([['storage.credentials', 'SLUICE_S3_ACCESS_KEY/SLUICE_S3_SECRET_KEY']]);
    const e = explainSettingError(
      new SluiceError(
        'ERR_INVALID_ARG',
        'storage.credentials.secretAccessKey must be a non-empty string',
        {
          field: 'storage.credentials.secretAccessKey',
        },
      ),
      origins,
    );
    expect(e).toMatchObject({ code: 'ERR_INVALID_ARG' });
    expect((e as Error).message).toBe(
      'storage.credentials.secretAccessKey must be a non-empty string (from SLUICE_S3_ACCESS_KEY/SLUICE_S3_SECRET_KEY)',
    );
    expect(
      (
        explainSettingError(
          new SluiceError('ERR_INVALID_ARG', 'cdn.endpoint must be a non-empty string', {
            field: 'cdn.endpoint',
          }),
          origins,
        ) as Error
      ).message,
    ).toContain('(set it with --cdn-endpoint, SLUICE_CDN_ENDPOINT');
    const other = new Error('connect ECONNREFUSED');
    expect(explainSettingError(other, origins)).toBe(other);
  });
});

describe('deviceBinding', () => {
  it('each setting from its flag, else its variable, else the file (cooldown: s vs ms)', () => {
    const file = configFile({
      deviceBinding: { maxDrift: 2, minMatch: 5, driftCooldownMs: 60_000 },
    });
    const fromFile = resolveServeSettings({ file, env: {}, flags: {} });
    expect(fromFile.deviceBinding).toEqual({ maxDrift: 2, minMatch: 5, driftCooldownMs: 60_000 });
    const mixed = resolveServeSettings({
      file,
      env: { SLUICE_BINDING_MAX_DRIFT: '3', SLUICE_BINDING_DRIFT_COOLDOWN: '7' },
      flags: { bindingMaxDrift: '0' },
    });
    expect(mixed.deviceBinding).toEqual({ maxDrift: 0, minMatch: 5, driftCooldownMs: 7000 });
    expect(mixed.origins.get('deviceBinding.maxDrift')).toBe('--binding-max-drift');
    expect(mixed.origins.get('deviceBinding.driftCooldownMs')).toBe(
      'SLUICE_BINDING_DRIFT_COOLDOWN',
    );
    expect(mixed.origins.get('deviceBinding.minMatch')).toBe(`--config ${file}`);
    expect(resolveServeSettings({ env: {}, flags: {} }).deviceBinding).toBeUndefined();
  });

  it('refuses what is not a whole number, and unknown keys of the section', () => {
    expect(() => resolveServeSettings({ env: {}, flags: { bindingMinMatch: '2.5' } })).toThrow(
      /--binding-min-match must be a whole number ≥ 0, got '2.5'/,
    );
    expect(() => readServeConfigFile(configFile({ deviceBinding: { tolerance: 1 } }))).toThrow(
      /unknown setting 'deviceBinding.tolerance'/,
    );
  });
});

describe('offline lease length', () => {
  it('--lease-days over SLUICE_LEASE_DAYS over the file, in days, as seconds; 0 turns leases off', () => {
    const file = configFile({ leaseDays: 2 });
    expect(resolveServeSettings({ env: {}, flags: {} }).offlineLeaseSeconds).toBeUndefined();
    expect(resolveServeSettings({ file, env: {}, flags: {} }).offlineLeaseSeconds).toBe(172_800);
    const env = { SLUICE_LEASE_DAYS: '0.5' };
    expect(resolveServeSettings({ file, env, flags: {} }).offlineLeaseSeconds).toBe(43_200);
    const s = resolveServeSettings({ file, env, flags: { leaseDays: '0' } });
    expect(s.offlineLeaseSeconds).toBe(0);
    expect(s.origins.get('offlineLeaseSeconds')).toBe('--lease-days');
    expect(() => resolveServeSettings({ env: { SLUICE_LEASE_DAYS: '-1' }, flags: {} })).toThrow(
      "SLUICE_LEASE_DAYS must be a number of days from 0 to 3660 (0: no offline use), got '-1'",
    );
  });
});
