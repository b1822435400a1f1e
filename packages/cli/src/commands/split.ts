import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { buildManifest, DEFAULT_CHUNK_SIZE, smallPartSize, split } from '@sluice/core';
import { defineCommand, EXIT, UsageError } from '../command.js';
import { checkParent } from '../outputPath.js';
import { parseSize } from '../units.js';

export const splitCommand = defineCommand({
  name: 'split',
  summary: "Split a sealed blob into its small and big parts and write the big part's manifest",
  usage: 'BLOB OUTDIR [--small-kb N] [--chunk-size SIZE]',
  flags: {
    'small-kb': {
      type: 'string',
      value: 'N',
      help: 'small part = min(N KiB, 30% of the blob)',
      default: '1024',
    },
    'chunk-size': {
      type: 'string',
      value: 'SIZE',
      help: 'big-part chunk size for the manifest digests, a multiple of 16 (e.g. 1MiB)',
      default: String(DEFAULT_CHUNK_SIZE),
    },
  },
  notes: ['OUTDIR ending in / is created when missing; without the /, it must exist.'],
  positionals: [2, 2],
  async run(values, [blob = '', outDir = ''], io) {
    const smallKB = positiveInt(values['small-kb'], '--small-kb');
    const chunkSize = parseSize(values['chunk-size']);
    if (chunkSize === 0 || chunkSize % 16 !== 0) {
      throw new UsageError('--chunk-size must be a multiple of 16');
    }
    const name = basename(blob);
    const small = join(outDir, `${name}.small`);
    const big = join(outDir, `${name}.big`);
    if (outDir.endsWith('/')) await mkdir(outDir, { recursive: true });
    else checkParent(small);
    const smallSize = smallPartSize((await stat(blob)).size, smallKB);
    await split(blob, small, big, smallSize);
    const manifest = await buildManifest(big, { smallSize, chunkSize });
    const manifestPath = join(outDir, `${name}.manifest.json`);
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    io.err(
      `split ${blob}: small ${small} (${manifest.smallSize} bytes), big ${big} (${manifest.bigSize} bytes, ${manifest.chunks.length} chunks), manifest ${manifestPath}`,
    );
    return EXIT.ok;
  },
});

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive integer, got ${text}`);
  return n;
}
