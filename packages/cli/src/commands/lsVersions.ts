import { listVersions, type Session, type VersionsResponse } from '@sluice/core';
import { EXIT, type Io } from '../command.js';
import { formatSize } from '../units.js';

/**
 * `sluice ls --versions`: every version of each named resource (all of the folder's when `names`
 * holds them all), one line each, `*` marking the released one.
 */
export async function printVersions(
  session: Session,
  folder: string,
  names: readonly string[],
  json: boolean,
  io: Io,
): Promise<number> {
  const resources: VersionsResponse[] = [];
  for (const name of names) resources.push(await listVersions(session, folder, name));
  if (json) {
    io.out(JSON.stringify({ folder, resources }));
    return EXIT.ok;
  }
  if (resources.length === 0) {
    io.err(`${folder}: no resources`);
    return EXIT.ok;
  }
  const width = Math.max(4, ...resources.map((r) => r.name.length));
  io.out(`${'NAME'.padEnd(width)}  VERSION  SEALED SIZE  CREATED                   UPLOADER`);
  for (const r of resources) {
    for (const v of r.versions) {
      const number = `${v.current ? '*' : ' '}v${v.version}`;
      io.out(
        `${r.name.padEnd(width)}  ${number.padEnd(7)}  ${formatSize(v.blobSize).padStart(11)}  ` +
          `${v.createdAt.padEnd(24)}  ${v.uploadedBy ?? '(deleted account)'}`,
      );
    }
  }
  io.err('* released: what a device gets without --version (change it with `sluice release`)');
  return EXIT.ok;
}
