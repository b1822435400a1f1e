import type { Flag } from './flags.js';

/**
 * The flags several commands take, declared once. A command may give one its own help text
 * (`{ ...commonFlags.json, help: '…' }`) where what it prints or reads differs.
 */
export const commonFlags = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  json: { type: 'boolean', help: 'print one JSON line' },
  'password-stdin': { type: 'boolean', help: 'read the password from the first line of stdin' },
  server: { type: 'string', value: 'URL', help: 'the resource API' },
  cache: {
    type: 'string',
    value: 'DIR',
    help: 'keep verified big parts in the shared cache DIR and reuse them',
  },
  version: {
    type: 'string',
    value: 'N',
    help: 'version N of the resource (see `sluice ls --versions`)',
  },
  yes: { type: 'boolean', help: 'do it without asking: the change cannot be undone' },
} satisfies Record<string, Flag>;

/** Flags every command takes, before or after its name (`sluice -q pull …`, `sluice pull … -q`). */
export const globalFlags = {
  help: commonFlags.help,
  quiet: {
    type: 'boolean',
    short: 'q',
    help: 'print only errors on stderr (results still go to stdout)',
  },
  verbose: {
    type: 'boolean',
    short: 'v',
    help: 'print more detail on stderr: timings, each range of a transfer',
  },
  'no-progress': { type: 'boolean', help: 'never draw a progress bar' },
} satisfies Record<string, Flag>;
