import { readFileSync } from 'node:fs';
import { SluiceError } from '@sluice/core';
import type { ServerOptions } from '@sluice/server';
import { SERVE_ENV } from './serveEnv.js';
import type { SettingSources } from './settingSources.js';

/**
 * `--tls-cert`/`--tls-key` (else `SLUICE_TLS_CERT`/`SLUICE_TLS_KEY`, else the file's `tlsCert`/
 * `tlsKey`): the two PEM files read, for createServer to check that they are a pair. Both or
 * neither; an unreadable file is named with its origin (its content never is).
 */
export function tlsFiles(src: SettingSources): ServerOptions['tls'] {
  const { flags, file } = src;
  const certPath = src.pick(
    'tls.cert',
    [flags.tlsCert, '--tls-cert'],
    src.fromEnv(SERVE_ENV.tlsCert),
    src.inFile(file.tlsCert),
  );
  const keyPath = src.pick(
    'tls.key',
    [flags.tlsKey, '--tls-key'],
    src.fromEnv(SERVE_ENV.tlsKey),
    src.inFile(file.tlsKey),
  );
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) {
    const given = certPath === undefined ? 'key' : 'certificate';
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `HTTPS needs a certificate and its key, but only the ${given} is set (from ` +
        `${src.origins.get(certPath === undefined ? 'tls.key' : 'tls.cert')}): give both ` +
        '--tls-cert FILE and --tls-key FILE (or neither, for plain HTTP)',
      { field: certPath === undefined ? 'tls.cert' : 'tls.key' },
    );
  }
  src.origins.set('tls', `${src.origins.get('tls.cert')} and ${src.origins.get('tls.key')}`);
  return {
    cert: readPem(src, 'tls.cert', certPath),
    key: readPem(src, 'tls.key', keyPath),
  };
}

function readPem(src: SettingSources, field: string, path: unknown): Buffer {
  const origin = src.origins.get(field) ?? field;
  if (typeof path !== 'string' || path === '') {
    throw new SluiceError('ERR_INVALID_ARG', `${field} must be a file path (from ${origin})`, {
      field,
    });
  }
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    const what = field === 'tls.key' ? 'key' : 'certificate';
    throw new SluiceError(
      'ERR_IO',
      `cannot read the TLS ${what} ${path} (from ${origin}): ${code}`,
      {
        cause: e,
        path,
      },
    );
  }
}
