import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { uploadBigSmallResource } from '@sluice/core';
import { type Command, EXIT } from '../command.js';
import { storedSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';

export const pushCommand: Command = {
  name: 'push',
  summary: 'Seal a file with a fresh data key and upload it as a new version',
  usage: 'FILE FOLDER [--name NAME] [--json]',
  help: [
    '  --name NAME  resource name (default: the file name)',
    '  --json       print one JSON line {folder,name,version,size,ms,mbPerSec}',
  ],
  options: { name: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [2, 2],
  async run(values, [file = '', folder = ''], io) {
    const name = typeof values.name === 'string' ? values.name : basename(file);
    const { size } = await stat(file);
    const { session } = storedSession();
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    const t0 = performance.now();
    try {
      if (io.isTty && !values.json) io.err(`sealing and uploading ${file} (${formatSize(size)})…`);
      const created = await uploadBigSmallResource(session, file, name, folder, {
        signal: controller.signal,
      });
      const ms = Math.round(performance.now() - t0);
      const report = { ...created, size, ms, mbPerSec: mbPerSec(size, ms) };
      if (values.json) io.out(JSON.stringify(report));
      else
        io.err(
          `pushed ${file} → ${created.folder}/${created.name} v${created.version} ` +
            `(${formatSize(size)} in ${ms} ms, ${report.mbPerSec} MB/s)`,
        );
      return EXIT.ok;
    } finally {
      process.off('SIGINT', onSignal);
    }
  },
};
