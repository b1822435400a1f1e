import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { hardwareInfo, type PushOptions, publicCdnConfig, push } from '@sluice/core';
import { defineCommand, EXIT, type Io, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { STDIO, stdinToFile, withTempFile } from '../outputPath.js';
import { ProgressBar } from '../progressBar.js';
import { signingKey, signKeyFlag } from '../publisherFlags.js';
import { loginPassword, resolveLogin, serverSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';
import { withInterrupt } from '../withInterrupt.js';

export const pushCommand = defineCommand({
  name: 'push',
  summary: 'Seal a file with a fresh data key and upload it as a new version',
  usage:
    'FILE FOLDER [--name NAME] [--no-release] [--sign-key FILE] [--json] [--password-stdin] [--server URL]',
  flags: {
    name: {
      type: 'string',
      value: 'NAME',
      help: 'resource name (default: the file name; required when FILE is - for stdin)',
    },
    'no-release': {
      type: 'boolean',
      help:
        'keep devices on the released version: the new one is only pulled with --version N ' +
        'until `sluice release` (default: the new version is released)',
    },
    'sign-key': signKeyFlag,
    json: {
      ...commonFlags.json,
      help: 'print one JSON line {folder,name,version,size,publisher,ms,mbPerSec}',
    },
    'password-stdin': commonFlags['password-stdin'],
    server: commonFlags.server,
  },
  notes: [
    "When the server keeps big parts on an S3 CDN, the CDN's write keys come in a device envelope:",
    'your password is needed ($SLUICE_PASSWORD, --password-stdin or a prompt) and this device is',
    'identified by its hardware hash ($SLUICE_HARDWARE_HASH overrides). Otherwise no password.',
    'The manifest names the new version and is signed with your publisher key when there is one',
    '(`sluice keys generate`, then `sluice keys register`); devices with a trust list need that.',
    'FILE - reads stdin into a private temp file first (the upload needs its size); the password',
    'then comes from $SLUICE_PASSWORD.',
  ],
  positionals: [2, 2],
  async run(values, [file = '', folder = ''], io) {
    if (file !== STDIO) return pushFile(values, file, folder, values.name ?? basename(file), io);
    if (values.name === undefined) throw new UsageError('push - needs --name NAME');
    if (values['password-stdin']) {
      throw new UsageError(
        'push - reads the file from stdin: give the password in $SLUICE_PASSWORD',
      );
    }
    const name = values.name;
    return withTempFile(name, async (path) => {
      await stdinToFile(path);
      return pushFile(values, path, folder, name, io, 'stdin');
    });
  },
});

interface PushValues {
  'no-release'?: boolean | undefined;
  'sign-key'?: string | undefined;
  json?: boolean | undefined;
  'password-stdin'?: boolean | undefined;
  server?: string | undefined;
}

/** Pushes the file at `file` as `folder/name`; `shown` is what messages call it. */
async function pushFile(
  values: PushValues,
  file: string,
  folder: string,
  name: string,
  io: Io,
  shown = file,
): Promise<number> {
  const { size } = await stat(file);
  const signKey = await signingKey(values['sign-key']);
  const login = resolveLogin(values.server);
  const bar = ProgressBar.forTransfer(io, values.json, `${folder}/${name}`);
  const t0 = performance.now();
  try {
    const { created, cdn } = await withInterrupt(async (signal) => {
      const opened = await serverSession(login, { passwordStdin: values['password-stdin'] });
      const { session } = opened;
      const cdn = await publicCdnConfig(session, { signal });
      let keys: Pick<PushOptions, 'password' | 'hardware' | 'hardwareFactors'> = {};
      if (cdn.kind === 's3') {
        const password = opened.password ?? (await loginPassword(login, values['password-stdin']));
        // With the password at hand, Session may log in again if the saved login has lapsed.
        session.setCredentials(login.email, password);
        const { hash, digests } = await hardwareInfo();
        keys = { password, hardware: hash, hardwareFactors: digests };
      }
      if (bar) io.err(`sealing and uploading ${shown} (${formatSize(size)})…`);
      const created = await push(session, folder, name, file, {
        ...keys,
        signKey: signKey?.privateKey,
        release: values['no-release'] !== true,
        signal,
        onProgress: bar ? (p) => bar.update(p.loaded, p.total) : undefined,
      });
      return { created, cdn };
    });
    const ms = Math.round(performance.now() - t0);
    bar?.finish();
    const publisher = signKey?.publicKey ?? null;
    const report = { ...created, size, publisher, ms, mbPerSec: mbPerSec(size, ms) };
    if (values.json) io.out(JSON.stringify(report));
    else {
      io.err(
        `pushed ${shown} → ${created.folder}/${created.name} v${created.version} ` +
          `(${formatSize(size)} in ${ms} ms, ${report.mbPerSec} MB/s` +
          `${cdn.kind === 's3' ? `, big part on the S3 CDN ${cdn.bucket}` : ''})`,
      );
      io.err(publisher === null ? 'unsigned: no publisher key' : `signed by ${publisher}`);
      if (values['no-release'] === true) {
        io.err(
          `not released: devices keep the released version; release it with ` +
            `sluice release ${created.folder} ${created.name} ${created.version}`,
        );
      }
    }
    return EXIT.ok;
  } finally {
    bar?.finish();
  }
}
