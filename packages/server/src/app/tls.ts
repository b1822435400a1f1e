import { createSecureContext } from 'node:tls';
import { invalidSetting } from '../errors.js';

/** A certificate chain and its private key, PEM, for serving HTTPS. */
export interface TlsOptions {
  /** The certificate, then any intermediates (PEM). */
  cert: string | Buffer;
  /** The certificate's private key (PEM, unencrypted). */
  key: string | Buffer;
}

/**
 * Checks that `tls` holds a PEM certificate and a PEM private key that belong together, so a bad
 * pair fails at start rather than at the first handshake. Messages never quote either (the key
 * is a secret; OpenSSL's reason code is enough).
 */
export function checkTls(tls: TlsOptions | undefined): TlsOptions | undefined {
  if (tls === undefined) return undefined;
  if (typeof tls !== 'object' || tls === null) throw invalidSetting('tls', 'must be {cert, key}');
  const { cert, key } = tls;
  if (cert === undefined || key === undefined) {
    throw invalidSetting(
      cert === undefined ? 'tls.cert' : 'tls.key',
      'is missing: HTTPS needs both a certificate and its private key',
    );
  }
  if (!isPem(cert, /CERTIFICATE/)) throw invalidSetting('tls.cert', 'holds no PEM certificate');
  if (!isPem(key, /PRIVATE KEY/)) throw invalidSetting('tls.key', 'holds no PEM private key');
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    const reason = (e as { code?: string }).code ?? 'unusable';
    throw invalidSetting(
      'tls',
      `certificate and key cannot be used together (${reason}): is the key the certificate's, ` +
        'and not encrypted?',
    );
  }
  return { cert, key };
}

function isPem(value: unknown, label: RegExp): boolean {
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) return false;
  const text = value.toString('latin1');
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text);
  return begin !== null && label.test(begin[1] ?? '') && text.includes(`-----END ${begin[1]}-----`);
}
