import {
  isSluiceError,
  listVersions,
  removeResource,
  removeVersion,
  type Session,
} from '@sluice/core';
import { defineCommand, EXIT, type Io, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { resolveLogin, serverSession } from '../storedSession.js';
import { optionalVersion } from '../versionArg.js';

export const rmCommand = defineCommand({
  name: 'rm',
  summary: 'Delete a resource (every version, its metadata and its parts), or one version',
  usage: 'FOLDER NAME [--version N] [--yes] [--server URL] [--password-stdin]',
  flags: {
    version: {
      ...commonFlags.version,
      help: 'delete version N only, with its parts (the released one needs --yes)',
    },
    yes: {
      ...commonFlags.yes,
      help:
        'delete every version of a resource that has several; with --version, also the ' +
        'released one (the newest older version is released instead)',
    },
    server: commonFlags.server,
    'password-stdin': commonFlags['password-stdin'],
  },
  notes: [
    'Without --version, a resource with more than one version is only deleted with --yes.',
    "A deleted version's number is never given again. `sluice ls --versions` lists them.",
  ],
  positionals: [2, 2],
  async run(values, [folder = '', name = ''], io) {
    const version = optionalVersion(values.version);
    const { session } = await serverSession(resolveLogin(values.server), {
      passwordStdin: values['password-stdin'],
    });
    const yes = values.yes === true;
    if (version !== undefined) return removeOne(session, folder, name, version, yes, io);
    if (!yes) {
      const { versions } = await listVersions(session, folder, name);
      if (versions.length > 1) {
        const numbers = versions.map((v) => `v${v.version}`).join(', ');
        throw new UsageError(
          `${folder}/${name} has ${versions.length} versions (${numbers}): give --yes to delete ` +
            'them all, or --version N to delete one',
        );
      }
    }
    await removeResource(session, folder, name);
    io.err(`removed ${folder}/${name}`);
    return EXIT.ok;
  },
});

async function removeOne(
  session: Session,
  folder: string,
  name: string,
  version: number,
  force: boolean,
  io: Io,
): Promise<number> {
  try {
    const { current } = await removeVersion(session, folder, name, version, { force });
    io.err(
      current === null
        ? `removed ${folder}/${name} v${version}, its last version: the resource is gone`
        : `removed ${folder}/${name} v${version}; released: v${current}`,
    );
    return EXIT.ok;
  } catch (e) {
    if (!isSluiceError(e, 'ERR_CONFLICT')) throw e;
    throw new UsageError(
      `v${version} is the released version of ${folder}/${name}: release another first ` +
        `(sluice release ${folder} ${name} N), or give --yes to delete it and release the ` +
        'newest older version',
    );
  }
}
