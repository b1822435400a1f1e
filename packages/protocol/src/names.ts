/**
 * Folder and resource names (docs/API.md, Resource names): ASCII letters, digits, `.`, `_`, `-`,
 * starting with a letter or digit, at most 128 characters. That excludes `.`, `..`, separators
 * (also once URL-decoded), NUL, whitespace and Unicode look-alikes, so a name never resolves away
 * in a URL and never names a path on disk. Client and server check the same rule.
 */
export const RESOURCE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What a name must look like, for error messages. */
export const RESOURCE_NAME_RULE =
  "use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit";

export function isResourceName(value: unknown): value is string {
  return typeof value === 'string' && RESOURCE_NAME_PATTERN.test(value);
}

const KEY_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A CDN object key (`cdnKey`): `/`-separated names, no empty, `.` or `..` segment, ≤ 1024 characters. */
export function isObjectKey(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length <= 1024 &&
    value.split('/').every((segment) => KEY_SEGMENT.test(segment))
  );
}
