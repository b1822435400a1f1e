import { concat } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { checkParent, fileToStdout, STDIO, withTempFile } from '../outputPath.js';

export const concatCommand = defineCommand({
  name: 'concat',
  summary: 'Join parts into one file (e.g. small + big back into a sealed blob)',
  usage: 'PART... OUT',
  notes: ['OUT - writes the joined bytes to stdout.'],
  positionals: [2, Number.POSITIVE_INFINITY],
  async run(_values, positionals, io) {
    const dst = positionals.at(-1) as string;
    const parts = positionals.slice(0, -1);
    if (dst === STDIO) {
      await withTempFile('joined', async (path) => {
        await concat(parts, path);
        await fileToStdout(path);
      });
    } else {
      checkParent(dst);
      await concat(parts, dst);
    }
    io.err(`joined ${parts.length} part(s) → ${dst === STDIO ? 'stdout' : dst}`);
    return EXIT.ok;
  },
});
