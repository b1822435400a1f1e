import { readFile } from 'node:fs/promises';
import { openFile, openSealedFile, SluiceError, validateSealedFileManifest } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { keyFileFlag, readKeyFile, requiredKeyFile } from '../keyFile.js';
import { checkParent, fileToStdout, STDIO, withTempFile } from '../outputPath.js';

export const decryptCommand = defineCommand({
  name: 'decrypt',
  summary:
    'Open a sealed blob (IV ‖ AES-256-CBC ciphertext); OUT appears only if it opened cleanly',
  usage: 'BLOB OUT --key-file FILE',
  flags: { 'key-file': keyFileFlag },
  notes: [
    'With BLOB.manifest beside it (written by `sluice encrypt`), BLOB and the plaintext are checked',
    'against it before OUT appears: a wrong key fails (ERR_BAD_DECRYPT) instead of passing the',
    'padding check about 1 time in 256 with garbage. Without one, OUT is not verified.',
    'OUT - writes the plaintext to stdout once it opened (and was verified): nothing on a failure.',
  ],
  positionals: [2, 2],
  async run(values, [src = '', dst = ''], io) {
    if (dst !== STDIO) checkParent(dst);
    const key = await readKeyFile(requiredKeyFile(values['key-file']));
    try {
      const manifestPath = `${src}.manifest`;
      const manifest = await readManifest(manifestPath);
      const open = (to: string) =>
        manifest === undefined ? openFile(src, to, key) : openSealedFile(src, to, key, manifest);
      if (dst === STDIO) {
        await withTempFile('plain', async (path) => {
          await open(path);
          await fileToStdout(path);
        });
      } else await open(dst);
      const shown = dst === STDIO ? 'stdout' : dst;
      io.err(
        manifest === undefined
          ? `opened ${src} → ${shown}; not verified: no ${manifestPath}`
          : `opened ${src} → ${shown}, verified against ${manifestPath}`,
      );
      return EXIT.ok;
    } finally {
      key.fill(0);
    }
  },
});

/** The sealed-file manifest at `path`, undefined when there is none. */
async function readManifest(path: string) {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SluiceError('ERR_IO', `cannot read ${path}`, { cause: e, path });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SluiceError('ERR_BAD_MANIFEST', `${path} is not JSON`);
  }
  return validateSealedFileManifest(parsed);
}
