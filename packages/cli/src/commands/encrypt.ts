import { existsSync } from 'node:fs';
import { sealFile } from '@sluice/core';
import { type Command, EXIT, UsageError } from '../command.js';
import { createKeyFile, readKeyFile } from '../keyFile.js';

export const encryptCommand: Command = {
  name: 'encrypt',
  summary: 'Seal a file: IV ‖ AES-256-CBC(file), openable by `sluice decrypt` or `openssl enc -d`',
  usage: 'IN OUT --key-file FILE',
  help: [
    '  --key-file FILE  the data key as 64 hex characters; created (mode 0600) with a fresh key if missing',
  ],
  options: { 'key-file': { type: 'string' } },
  positionals: [2, 2],
  async run(values, [src, dst], io) {
    const keyFile = values['key-file'];
    if (typeof keyFile !== 'string') throw new UsageError('--key-file is required');
    const fresh = !existsSync(keyFile);
    const key = fresh ? await createKeyFile(keyFile) : await readKeyFile(keyFile);
    if (fresh) io.err(`wrote a new data key to ${keyFile}`);
    const { size } = await sealFile(src as string, dst as string, key);
    io.err(`sealed ${src} → ${dst} (${size} bytes)`);
    return EXIT.ok;
  },
};
