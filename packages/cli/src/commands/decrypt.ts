import { openFile } from '@sluice/core';
import { type Command, EXIT, UsageError } from '../command.js';
import { readKeyFile } from '../keyFile.js';

export const decryptCommand: Command = {
  name: 'decrypt',
  summary:
    'Open a sealed blob (IV ‖ AES-256-CBC ciphertext); OUT appears only if it opened cleanly',
  usage: 'BLOB OUT --key-file FILE',
  help: ['  --key-file FILE  the data key as 64 hex characters'],
  options: { 'key-file': { type: 'string' } },
  positionals: [2, 2],
  async run(values, [src, dst], io) {
    const keyFile = values['key-file'];
    if (typeof keyFile !== 'string') throw new UsageError('--key-file is required');
    await openFile(src as string, dst as string, await readKeyFile(keyFile));
    io.err(`opened ${src} → ${dst}`);
    return EXIT.ok;
  },
};
