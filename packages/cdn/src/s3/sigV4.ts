import { createHash, createHmac } from 'node:crypto';
import type { S3Credentials } from '@sluice/protocol';

/** SHA-256 of the empty body, the payload hash of a GET. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SignedGet {
  /** The request URL (path-style: `/bucket/key`). */
  url: URL;
  /** Every header to send, `host` and `authorization` included, lower-case names. */
  headers: Record<string, string>;
}

/**
 * Signs an S3 GET with AWS Signature Version 4 in the `Authorization` header (the AWS SigV4
 * documentation's "Authenticating Requests: Using the Authorization Header"), so a ranged GET
 * can go over our own socket receiver instead of the SDK. `headers` are signed as given (range,
 * if-match); the payload is the empty body. `now` is the request time.
 */
export function signS3Get(
  endpoint: string,
  bucket: string,
  key: string,
  region: string,
  credentials: S3Credentials,
  headers: Record<string, string>,
  now: Date = new Date(),
): SignedGet {
  const url = objectUrl(endpoint, bucket, key);
  const path = url.pathname;
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const all: Record<string, string> = {
    host: url.host,
    'x-amz-content-sha256': EMPTY_SHA256,
    'x-amz-date': amzDate,
  };
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v.trim();
  const names = Object.keys(all).sort();
  const canonical = [
    'GET',
    path,
    '',
    ...names.map((n) => `${n}:${all[n]}`),
    '',
    names.join(';'),
    EMPTY_SHA256,
  ].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let k = hmac(`AWS4${credentials.secretAccessKey}`, day);
  for (const part of [region, 's3', 'aws4_request']) k = hmac(k, part);
  const signature = createHmac('sha256', k).update(toSign).digest('hex');
  all.authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return { url, headers: all };
}

/** The path-style URL of `key` in `bucket`, each key segment escaped as SigV4 signs it. */
export function objectUrl(endpoint: string, bucket: string, key: string): URL {
  const base = new URL(endpoint);
  const prefix = base.pathname.replace(/\/+$/, '');
  return new URL(`${prefix}/${uriEncode(bucket)}/${key.split('/').map(uriEncode).join('/')}`, base);
}

/** RFC 3986 percent-encoding as SigV4 wants it: only A-Z a-z 0-9 - _ . ~ unescaped. */
function uriEncode(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
