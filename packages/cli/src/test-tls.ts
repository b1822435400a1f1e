// A throwaway certificate for the tests that serve HTTPS, made by the `openssl` CLI.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A self-signed P-256 certificate for 127.0.0.1 and localhost in `dir`: the two PEM files. */
export function selfSignedCert(dir: string, name = 'tls'): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}
