import { isObjectKey, type S3Credentials } from '@sluice/protocol';
import { invalidSetting } from '../errors.js';

// The checks of S3 settings shared by the `cdn` and `storage` server options. Messages name the
// field (`name`), never its value: a value may be a key.

// S3 bucket naming rules (lower case, 3–63 characters, no leading or trailing dot or dash).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Checks a required setting. */
export function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > 1024) {
    throw invalidSetting(name, `must be a non-empty string`);
  }
  return value;
}

/** Checks a key pair. */
export function credentialsOf(value: unknown, name: string): S3Credentials {
  const c = value as Partial<S3Credentials> | null | undefined;
  if (typeof c !== 'object' || c === null) {
    throw invalidSetting(name, `must be {accessKeyId, secretAccessKey}`);
  }
  return {
    accessKeyId: nonEmpty(c.accessKeyId, `${name}.accessKeyId`),
    secretAccessKey: nonEmpty(c.secretAccessKey, `${name}.secretAccessKey`),
  };
}

/** Checks an S3 endpoint: an http(s) origin, nothing after it. */
export function checkEndpoint(value: unknown, name: string): string {
  const text = nonEmpty(value, name);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidSetting(name, `must be an http(s) URL`);
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username !== '' ||
    url.password !== '' ||
    url.search !== '' ||
    url.hash !== '' ||
    (url.pathname !== '/' && url.pathname !== '')
  ) {
    throw invalidSetting(name, `must be an http(s) origin without credentials, path or query`);
  }
  return url.origin;
}

/** Checks a bucket name against the S3 rules. */
export function checkBucket(value: unknown, name: string): string {
  if (typeof value !== 'string' || !BUCKET.test(value) || value.includes('..')) {
    throw invalidSetting(name, `must be a valid S3 bucket name`);
  }
  return value;
}

/** Checks an optional key prefix; undefined or empty means none. */
export function checkPrefix(value: unknown, name: string): string | null {
  if (value === undefined || value === '') return null;
  if (!isObjectKey(value)) {
    throw invalidSetting(name, `must be /-separated names without empty, . or .. segments`);
  }
  return value;
}
