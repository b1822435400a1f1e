// The accounts of bench:fleet, named by number so that the bench process and the server
// processes that seed them agree without passing lists around.
import { createHash } from 'node:crypto';

export const ADMIN_EMAIL = 'admin@fleet.invalid';
export const UPLOADER_EMAIL = 'uploader@fleet.invalid';
export const FOLDER = 'models';
export const NAME = 'small.bin';

/** The email of seeded device account `i` (0-based). */
export function deviceEmail(i: number): string {
  return `device-${i}@fleet.invalid`;
}

/** The hardware hash device `i` sends (fixed per account: its first envelope binds it). */
export function deviceHardware(i: number): string {
  return createHash('sha256').update(`sluice bench:fleet device ${i}`).digest('hex');
}
