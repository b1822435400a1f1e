import { existsSync } from 'node:fs';
import { describeSealedFile, sealFile, writeFileAtomic } from '@sluice/core';
import { defineCommand, EXIT, UsageError } from '../command.js';
import { createKeyFile, keyFileFlag, readKeyFile, requiredKeyFile } from '../keyFile.js';
import { checkParent, STDIO, stdinToFile, withTempFile } from '../outputPath.js';

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
    'IN - reads stdin (spooled to a private temp file: the manifest reads the plaintext again).',
  ],
  positionals: [2, 2],
  async run(values, [src = '', dst = ''], io) {
    const keyFile = requiredKeyFile(values['key-file']);
    if (dst === STDIO)
      throw new UsageError('OUT must be a file: OUT.manifest is written beside it');
    checkParent(dst);
    const fresh = !existsSync(keyFile);
    const key = fresh ? await createKeyFile(keyFile) : await readKeyFile(keyFile);
    try {
      if (fresh) io.err(`wrote a new data key to ${keyFile}`);
      const seal = async (from: string) => {
        const { size } = await sealFile(from, dst, key);
        return { size, manifest: await describeSealedFile(from, dst, key) };
      };
      const { size, manifest } =
        src === STDIO
          ? await withTempFile('stdin', async (path) => {
              await stdinToFile(path);
              return seal(path);
            })
          : await seal(src);
      // 0666 less the umask, as any file the user creates: it holds no secret.
      await writeFileAtomic(`${dst}.manifest`, `${JSON.stringify(manifest, null, 2)}\n`, {
        mode: 0o666,
      });
      io.err(
        `sealed ${src === STDIO ? 'stdin' : src} → ${dst} (${size} bytes), manifest ${dst}.manifest`,
      );
      return EXIT.ok;
    } finally {
      key.fill(0);
    }
  },
});
