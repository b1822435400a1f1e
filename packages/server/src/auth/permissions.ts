import type { Role } from '@sluice/protocol';

/** Everything a caller can ask the API to do; each route names exactly one of these. */
export const OPERATIONS = [
  'me',
  'resources.get',
  'resources.list',
  'resources.upload',
  'resources.delete',
  'resources.release',
  'cdnConfig.read',
  'cdnConfig.write',
  'publisherKeys',
  'users.admin',
  'leases.check',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/**
 * The one role × operation table. The guard, the routes and docs/API.md all follow it (a test
 * parses the doc's table and compares). `cdnConfig.write` means "the CDN config includes the
 * write keys"; `resources.release` moves a resource's release pointer (the roles that upload);
 * `publisherKeys` is the caller's own publisher keys (the roles that upload);
 * `users.admin` covers every user-administration route.
 */
export const PERMISSIONS: Readonly<Record<Operation, readonly Role[]>> = {
  me: ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'],
  'resources.get': ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'],
  'resources.list': ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'],
  'resources.upload': ['ApiAdmin', 'Admin', 'ResourceUploader'],
  'resources.delete': ['ApiAdmin', 'Admin', 'ResourceUploader'],
  'resources.release': ['ApiAdmin', 'Admin', 'ResourceUploader'],
  'cdnConfig.read': ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'],
  'cdnConfig.write': ['ApiAdmin', 'Admin', 'ResourceUploader'],
  publisherKeys: ['ApiAdmin', 'Admin', 'ResourceUploader'],
  'users.admin': ['ApiAdmin', 'Admin'],
  'leases.check': ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'],
};

export function isOperation(value: unknown): value is Operation {
  return typeof value === 'string' && (OPERATIONS as readonly string[]).includes(value);
}

/** Whether `role` may perform `operation` according to the table. */
export function isAllowed(role: Role, operation: Operation): boolean {
  return PERMISSIONS[operation].includes(role);
}

/**
 * Whether an actor with `actorRole` may act on (or grant) `targetRole` in user administration:
 * only an ApiAdmin may create, change or disable an ApiAdmin, so an Admin cannot promote anyone
 * (including itself) above its own level.
 */
export function mayManageRole(actorRole: Role, targetRole: Role): boolean {
  return targetRole !== 'ApiAdmin' || actorRole === 'ApiAdmin';
}
