import { existsSync } from 'node:fs';
import { sealFile } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { createKeyFile, keyFileFlag, readKeyFile, requiredKeyFile } from '../keyFile.js';

export const encryptCommand = defineCommand({
  name: 'encrypt',
  summary: 'Seal a file: IV ‖ AES-256-CBC(file), openable by `sluice decrypt` or `openssl enc -d`',
  usage: 'IN OUT --key-file FILE',
  flags: {
    'key-file': {
      ...keyFileFlag,
      help: `${keyFileFlag.help}; created (mode 0600) with a fresh key if missing`,
    },
  },
  positionals: [2, 2],
  async run(values, [src = '', dst = ''], io) {
    const keyFile = requiredKeyFile(values['key-file']);
    const fresh = !existsSync(keyFile);
    const key = fresh ? await createKeyFile(keyFile) : await readKeyFile(keyFile);
    if (fresh) io.err(`wrote a new data key to ${keyFile}`);
    const { size } = await sealFile(src, dst, key);
    io.err(`sealed ${src} → ${dst} (${size} bytes)`);
    return EXIT.ok;
  },
});
