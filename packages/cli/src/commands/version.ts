import { readFileSync } from 'node:fs';
import { backend } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';

/** The version of @sluice/cli, from its package.json. */
export function cliVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

export const versionCommand = defineCommand({
  name: 'version',
  summary: 'Print the version of sluice (with -v: Node and the crypto backend)',
  usage: '[-v]',
  positionals: [0, 0],
  async run(_values, _positionals, io) {
    io.out(`sluice ${cliVersion()}`);
    if (io.verbose) {
      const b = backend();
      io.out(`node ${process.versions.node}, OpenSSL ${process.versions.openssl}`);
      io.out(`crypto backend ${b.kind} (${b.reason})`);
    }
    return EXIT.ok;
  },
});
