import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { SluiceError } from '@sluice/core';

/** A settings object as read from JSON, before createServer checks its values. */
export type Settings = Record<string, unknown>;

/** The settings a `--config` file may hold, by section. */
const KNOWN_KEYS: Record<string, string[]> = {
  '': [
    'storage',
    'cdn',
    'shutdownGraceMs',
    'drainDelayMs',
    'passwordHash',
    'trustProxy',
    'timeouts',
    'databaseUrl',
    'tlsCert',
    'tlsKey',
    'logLevel',
    'deviceBinding',
    'keepVersions',
    'leaseDays',
  ],
  storage: ['kind', 'endpoint', 'region', 'bucket', 'prefix', 'credentials'],
  cdn: ['kind', 'endpoint', 'region', 'bucket', 'prefix', 'chunkSize', 'downloader', 'uploader'],
  passwordHash: ['logN'],
  timeouts: ['headersMs', 'keepAliveMs', 'idleMs', 'bodyGraceMs', 'bodyMinBytesPerSecond'],
  deviceBinding: ['maxDrift', 'minMatch', 'driftCooldownMs'],
};

/**
 * Reads `--config FILE`: a JSON object with `storage`, `cdn`, `shutdownGraceMs`, `drainDelayMs`,
 * `passwordHash`, `trustProxy`, `timeouts`, `databaseUrl`, `tlsCert`, `tlsKey` (paths of PEM files)
 * and `logLevel` only. A file holding a secret key (or
 * a database password) that group or others may read is refused
 * (like ssh with a private key).
 */
export function readServeConfigFile(path: string): Settings {
  const { text, mode } = readRegularFile(path);
  const settings = parseObject(text, path);
  checkKeys(settings, '', path);
  for (const section of ['storage', 'cdn', 'passwordHash', 'timeouts', 'deviceBinding']) {
    const inner = objectAt(settings, section, path);
    if (inner !== undefined) checkKeys(inner, section, path);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0 && holdsSecret(settings)) {
    throw new SluiceError(
      'ERR_INSECURE_FILE',
      `config file ${path} holds secret keys and is accessible by group or others (mode ` +
        `${mode.toString(8).padStart(4, '0')}): run \`chmod 600 ${path}\`, and change the keys if ` +
        'someone else may have read them',
      { path },
    );
  }
  return settings;
}

/** A section (`storage`, `cdn`, `passwordHash`, `timeouts`) of the settings, refused when not an object. */
export function objectAt(settings: Settings, key: string, path?: string): Settings | undefined {
  const v = settings[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SluiceError('ERR_INVALID_ARG', `${key} must be an object (config file ${path})`);
  }
  return v as Settings;
}

/** The file's text and permission bits, read from one open descriptor. */
function readRegularFile(path: string): { text: string; mode: number } {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const info = fstatSync(fd);
    if (!info.isFile()) {
      throw new SluiceError('ERR_INVALID_ARG', `config file ${path} is not a regular file`);
    }
    return { text: readFileSync(fd, 'utf8'), mode: info.mode & 0o777 };
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SluiceError('ERR_IO', `cannot read config file ${path}${code ? `: ${code}` : ''}`, {
      cause: e,
      path,
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function parseObject(text: string, path: string): Settings {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // JSON.parse's message may quote the file (and a key in it): give the position only.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    const where = at === undefined ? '' : ` at ${lineColumn(text, Number(at))}`;
    throw new SluiceError('ERR_INVALID_ARG', `config file ${path} is not valid JSON${where}`, {
      path,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SluiceError('ERR_INVALID_ARG', `config file ${path} must hold a JSON object`);
  }
  return parsed as Settings;
}

function checkKeys(o: Settings, section: string, path: string): void {
  const known = KNOWN_KEYS[section] ?? [];
  const at = section === '' ? '' : `${section}.`;
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `config file ${path}: unknown setting '${at}${k}' (known: ${known.map((n) => at + n).join(', ')})`,
      );
    }
  }
}

function holdsSecret(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  return Object.entries(v).some(
    ([k, inner]) =>
      k === 'secretAccessKey' ||
      (k === 'databaseUrl' && typeof inner === 'string' && urlHasPassword(inner)) ||
      holdsSecret(inner),
  );
}

function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}
