import { openFile } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { keyFileFlag, readKeyFile, requiredKeyFile } from '../keyFile.js';

export const decryptCommand = defineCommand({
  name: 'decrypt',
  summary:
    'Open a sealed blob (IV ‖ AES-256-CBC ciphertext); OUT appears only if it opened cleanly',
  usage: 'BLOB OUT --key-file FILE',
  flags: { 'key-file': keyFileFlag },
  positionals: [2, 2],
  async run(values, [src = '', dst = ''], io) {
    const key = await readKeyFile(requiredKeyFile(values['key-file']));
    await openFile(src, dst, key);
    io.err(`opened ${src} → ${dst}`);
    return EXIT.ok;
  },
});
