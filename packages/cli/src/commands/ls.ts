import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { resolveLogin, serverSession } from '../storedSession.js';
import { formatSize } from '../units.js';

interface Listed {
  name: string;
  version: number;
  versions: number;
  blobSize: number;
  bigStored: boolean;
  createdAt: string;
}

export const lsCommand = defineCommand({
  name: 'ls',
  summary: 'List the resources of a folder (latest version of each)',
  usage: 'FOLDER [--json] [--server URL] [--password-stdin]',
  flags: {
    json: {
      ...commonFlags.json,
      help: 'print the server answer as one JSON line {folder, resources: [...]}',
    },
    server: commonFlags.server,
    'password-stdin': commonFlags['password-stdin'],
  },
  positionals: [1, 1],
  async run(values, [folder = ''], io) {
    const { session } = await serverSession(resolveLogin(values.server), {
      passwordStdin: values['password-stdin'],
    });
    const listing = await session.request<{ folder: string; resources: Listed[] }>(
      'GET',
      `/resources/${encodeURIComponent(folder)}`,
    );
    if (values.json) {
      io.out(JSON.stringify(listing));
      return EXIT.ok;
    }
    if (listing.resources.length === 0) {
      io.err(`${folder}: no resources`);
      return EXIT.ok;
    }
    const width = Math.max(4, ...listing.resources.map((r) => r.name.length));
    io.out(`${'NAME'.padEnd(width)}  VERSION  SEALED SIZE  CREATED`);
    for (const r of listing.resources) {
      io.out(
        `${r.name.padEnd(width)}  ${`v${r.version}${r.versions > 1 ? ` (${r.versions})` : ''}`.padEnd(7)}  ${formatSize(r.blobSize).padStart(11)}  ${r.createdAt}`,
      );
    }
    return EXIT.ok;
  },
});
