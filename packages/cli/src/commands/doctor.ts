import { backend } from '@sluice/core';
import { type Command, EXIT } from '../command.js';

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Report the crypto backend in use and why, and the runtime it runs on',
  usage: '[--json]',
  help: ['  --json  print one JSON object'],
  options: { json: { type: 'boolean' } },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const b = backend();
    const report = {
      backend: b.kind,
      reason: b.reason,
      node: process.version,
      openssl: process.versions.openssl,
      platform: `${process.platform}-${process.arch}`,
    };
    if (values.json) io.out(JSON.stringify(report));
    else {
      io.out(`crypto backend  ${report.backend} (${report.reason})`);
      io.out(`node            ${report.node}, OpenSSL ${report.openssl}, ${report.platform}`);
    }
    return EXIT.ok;
  },
};
