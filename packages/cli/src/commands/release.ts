import { releaseVersion } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { resolveLogin, serverSession } from '../storedSession.js';
import { parseVersionArg } from '../versionArg.js';

export const releaseCommand = defineCommand({
  name: 'release',
  summary: 'Make a version the one devices get by default (rollback: release the previous one)',
  usage: 'FOLDER NAME VERSION [--json] [--server URL] [--password-stdin]',
  flags: {
    json: { ...commonFlags.json, help: 'print one JSON line {folder,name,current,previous}' },
    server: commonFlags.server,
    'password-stdin': commonFlags['password-stdin'],
  },
  notes: [
    'Devices that pull without --version get VERSION from their next pull on. `sluice push`',
    'releases what it uploads unless given --no-release; `sluice ls --versions` shows which',
    'version is released. Needs a role that may push (ResourceUploader, Admin, ApiAdmin).',
  ],
  positionals: [3, 3],
  async run(values, [folder = '', name = '', text = ''], io) {
    const version = parseVersionArg(text, 'VERSION');
    const { session } = await serverSession(resolveLogin(values.server), {
      passwordStdin: values['password-stdin'],
    });
    const released = await releaseVersion(session, folder, name, version);
    if (values.json) {
      io.out(JSON.stringify(released));
      return EXIT.ok;
    }
    if (released.previous === released.current) {
      io.err(`${folder}/${name} v${released.current} was released already`);
    } else {
      io.err(
        `released ${folder}/${name} v${released.current} (was v${released.previous}); ` +
          `undo with: sluice release ${folder} ${name} ${released.previous}`,
      );
    }
    return EXIT.ok;
  },
});
