import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@sluice/core';
import type { JwksResponse } from '@sluice/protocol';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';

export const SIGNING_KEY_FILE = 'jwt-signing-key.json';
export const SIGNING_ALG = 'EdDSA';

interface SigningKeyFile {
  version: 1;
  alg: typeof SIGNING_ALG;
  kid: string;
  createdAt: string;
  privateJwk: JWK;
}

/** The server's JWT signing key pair and the JWKS that publishes its public half. */
export interface SigningKeys {
  readonly alg: typeof SIGNING_ALG;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** `{ keys: [publicJwk] }` with `kid`, `alg` and `use: 'sig'`; never the private part. */
  readonly jwks: JwksResponse;
}

/**
 * Loads the Ed25519 signing key from `<dataDir>/jwt-signing-key.json`, creating it (mode 0600,
 * exclusively, so two starting servers cannot end up with different keys) on first start. A key
 * file readable by group or others is refused rather than trusted.
 */
export async function loadOrCreateSigningKeys(dataDir: string): Promise<SigningKeys> {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let file: SigningKeyFile;
  try {
    file = await readKeyFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const created = await newKeyFile();
    try {
      await writeFileAtomic(path, `${JSON.stringify(created, null, 2)}\n`, {
        mode: 0o600,
        exclusive: true,
      });
      file = created;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
      file = await readKeyFile(path);
    }
  }
  return toSigningKeys(file);
}

async function newKeyFile(): Promise<SigningKeyFile> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { crv: 'Ed25519', extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicPart(privateJwk));
  return {
    version: 1,
    alg: SIGNING_ALG,
    kid,
    createdAt: new Date().toISOString(),
    privateJwk,
  };
}

async function readKeyFile(path: string): Promise<SigningKeyFile> {
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(
      `${path} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); ` +
        'run `chmod 600` on it',
    );
  }
  const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<SigningKeyFile>;
  const jwk = parsed.privateJwk;
  if (
    parsed.version !== 1 ||
    parsed.alg !== SIGNING_ALG ||
    typeof parsed.kid !== 'string' ||
    jwk?.kty !== 'OKP' ||
    jwk.crv !== 'Ed25519' ||
    typeof jwk.d !== 'string'
  ) {
    throw new Error(`${path} is not a sluice Ed25519 signing key file`);
  }
  return parsed as SigningKeyFile;
}

function publicPart(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

async function toSigningKeys(file: SigningKeyFile): Promise<SigningKeys> {
  const pub = publicPart(file.privateJwk);
  const privateKey = (await importJWK(file.privateJwk, SIGNING_ALG)) as CryptoKey;
  const publicKey = (await importJWK(pub, SIGNING_ALG)) as CryptoKey;
  return {
    alg: SIGNING_ALG,
    kid: file.kid,
    privateKey,
    publicKey,
    jwks: { keys: [{ ...pub, kid: file.kid, alg: SIGNING_ALG, use: 'sig' }] } as JwksResponse,
  };
}
