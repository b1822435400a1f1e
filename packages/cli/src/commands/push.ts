import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { hardwareHash, publicCdnConfig, uploadBigSmallResource } from '@sluice/core';
import { type Command, EXIT } from '../command.js';
import { readPassword } from '../password.js';
import { ProgressBar } from '../progressBar.js';
import { storedSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';

export const pushCommand: Command = {
  name: 'push',
  summary: 'Seal a file with a fresh data key and upload it as a new version',
  usage: 'FILE FOLDER [--name NAME] [--json] [--password-stdin]',
  help: [
    '  --name NAME       resource name (default: the file name)',
    '  --json            print one JSON line {folder,name,version,size,ms,mbPerSec}',
    '  --password-stdin  read the password from the first line of stdin',
    '',
    "When the server keeps big parts on an S3 CDN, the CDN's write keys come in a device envelope:",
    'your password is needed ($SLUICE_PASSWORD, --password-stdin or a prompt) and this device is',
    'identified by its hardware hash ($SLUICE_HARDWARE_HASH overrides). Otherwise no password.',
  ],
  options: {
    name: { type: 'string' },
    json: { type: 'boolean' },
    'password-stdin': { type: 'boolean' },
  },
  positionals: [2, 2],
  async run(values, [file = '', folder = ''], io) {
    const name = typeof values.name === 'string' ? values.name : basename(file);
    const { size } = await stat(file);
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    const bar = io.isTty && !values.json ? new ProgressBar(`${folder}/${name}`) : undefined;
    const t0 = performance.now();
    try {
      let { session } = storedSession();
      const cdn = await publicCdnConfig(session, { signal: controller.signal });
      let keys: { password?: string; hardware?: string } = {};
      if (cdn.kind === 's3') {
        const password = await readPassword({
          env: 'SLUICE_PASSWORD',
          stdin: values['password-stdin'] === true,
          prompt: 'password: ',
        });
        // With the password at hand, Session may log in again if the saved login has lapsed.
        ({ session } = storedSession(password));
        keys = { password, hardware: await hardwareHash() };
      }
      if (io.isTty && !values.json) io.err(`sealing and uploading ${file} (${formatSize(size)})…`);
      const created = await uploadBigSmallResource(session, file, name, folder, {
        ...keys,
        signal: controller.signal,
        ...(bar ? { onProgress: (p) => bar.update(p.loaded, p.total) } : {}),
      });
      const ms = Math.round(performance.now() - t0);
      bar?.finish();
      const report = { ...created, size, ms, mbPerSec: mbPerSec(size, ms) };
      if (values.json) io.out(JSON.stringify(report));
      else
        io.err(
          `pushed ${file} → ${created.folder}/${created.name} v${created.version} ` +
            `(${formatSize(size)} in ${ms} ms, ${report.mbPerSec} MB/s` +
            `${cdn.kind === 's3' ? `, big part on the S3 CDN ${cdn.bucket}` : ''})`,
        );
      return EXIT.ok;
    } finally {
      bar?.finish();
      process.off('SIGINT', onSignal);
    }
  },
};
