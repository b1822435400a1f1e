import { existsSync } from 'node:fs';
import { describeSealedFile, sealFile, writeFileAtomic } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { createKeyFile, keyFileFlag, readKeyFile, requiredKeyFile } from '../keyFile.js';

export const encryptCommand = defineCommand({
  name: 'encrypt',
  summary:
    'Seal a file: IV ‖ AES-256-CBC(file), openable by `sluice decrypt` or `openssl enc -d`; writes OUT.manifest beside it',
  usage: 'IN OUT --key-file FILE',
  flags: {
    'key-file': {
      ...keyFileFlag,
      help: `${keyFileFlag.help}; created (mode 0600) with a fresh key if missing`,
    },
  },
  notes: [
    'OUT.manifest records the sizes, the SHA-256 of OUT and a MAC of the plaintext under the key',
    '(docs/FORMAT.md §9): `sluice decrypt` checks both, so a wrong key or a damaged OUT writes nothing.',
  ],
  positionals: [2, 2],
  async run(values, [src = '', dst = ''], io) {
    const keyFile = requiredKeyFile(values['key-file']);
    const fresh = !existsSync(keyFile);
    const key = fresh ? await createKeyFile(keyFile) : await readKeyFile(keyFile);
    try {
      if (fresh) io.err(`wrote a new data key to ${keyFile}`);
      const { size } = await sealFile(src, dst, key);
      const manifest = await describeSealedFile(src, dst, key);
      // 0666 less the umask, as any file the user creates: it holds no secret.
      await writeFileAtomic(`${dst}.manifest`, `${JSON.stringify(manifest, null, 2)}\n`, {
        mode: 0o666,
      });
      io.err(`sealed ${src} → ${dst} (${size} bytes), manifest ${dst}.manifest`);
      return EXIT.ok;
    } finally {
      key.fill(0);
    }
  },
});
