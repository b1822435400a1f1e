import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { resolveLogin, serverSession } from '../storedSession.js';

export const rmCommand = defineCommand({
  name: 'rm',
  summary: 'Delete a resource: every version, its metadata and its parts',
  usage: 'FOLDER NAME [--server URL] [--password-stdin]',
  flags: { server: commonFlags.server, 'password-stdin': commonFlags['password-stdin'] },
  positionals: [2, 2],
  async run(values, [folder = '', name = ''], io) {
    const { session } = await serverSession(resolveLogin(values.server), {
      passwordStdin: values['password-stdin'],
    });
    await session.request(
      'DELETE',
      `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}`,
    );
    io.err(`removed ${folder}/${name}`);
    return EXIT.ok;
  },
});
