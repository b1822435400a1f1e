import type { ListResponse } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { resolveLogin, serverSession } from '../storedSession.js';
import { formatSize } from '../units.js';
import { printVersions } from './lsVersions.js';

export const lsCommand = defineCommand({
  name: 'ls',
  summary: 'List the resources of a folder (latest and released version of each), or every version',
  usage: 'FOLDER [NAME] [--versions] [--json] [--server URL] [--password-stdin]',
  flags: {
    json: {
      ...commonFlags.json,
      help: 'print the server answer as one JSON line {folder, resources: [...]}',
    },
    versions: {
      type: 'boolean',
      help: 'every version of each resource: number, size, created, uploader, * the released one',
    },
    server: commonFlags.server,
    'password-stdin': commonFlags['password-stdin'],
  },
  notes: ['NAME lists that resource only.'],
  positionals: [1, 2],
  async run(values, [folder = '', only], io) {
    const { session } = await serverSession(resolveLogin(values.server), {
      passwordStdin: values['password-stdin'],
    });
    const listing = await session.request<ListResponse>(
      'GET',
      `/resources/${encodeURIComponent(folder)}`,
    );
    if (only !== undefined) listing.resources = listing.resources.filter((r) => r.name === only);
    if (values.versions) {
      const names = listing.resources.map((r) => r.name);
      return printVersions(session, folder, names, values.json === true, io);
    }
    if (values.json) {
      io.out(JSON.stringify(listing));
      return EXIT.ok;
    }
    if (listing.resources.length === 0) {
      io.err(`${folder}: no resources`);
      return EXIT.ok;
    }
    const width = Math.max(4, ...listing.resources.map((r) => r.name.length));
    io.out(`${'NAME'.padEnd(width)}  VERSION  SEALED SIZE  CREATED                   RELEASED`);
    for (const r of listing.resources) {
      const version = `v${r.version}${r.versions > 1 ? ` (${r.versions})` : ''}`;
      io.out(
        `${r.name.padEnd(width)}  ${version.padEnd(7)}  ${formatSize(r.blobSize).padStart(11)}  ` +
          `${r.createdAt.padEnd(24)}  v${r.current ?? r.version}`,
      );
    }
    return EXIT.ok;
  },
});
