import { defineCommand, EXIT } from '../command.js';
import { storedSession } from '../storedSession.js';

export const rmCommand = defineCommand({
  name: 'rm',
  summary: 'Delete a resource: every version, its metadata and its parts',
  usage: 'FOLDER NAME',
  positionals: [2, 2],
  async run(_values, [folder = '', name = ''], io) {
    const { session } = storedSession();
    await session.request(
      'DELETE',
      `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}`,
    );
    io.err(`removed ${folder}/${name}`);
    return EXIT.ok;
  },
});
