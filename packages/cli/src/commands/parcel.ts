import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ParcelClient, type ParcelMetadata } from '@sluice/core';
import { checkAction } from '../checkAction.js';
import { defineCommand, EXIT, type Io, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { configDir, readConfig } from '../config.js';
import { deprecatedAlias, type Flag, type Flags, type FlagValues } from '../flags.js';
import { fileToStdout, STDIO, withTempFile } from '../outputPath.js';

/** The key file used when neither --key nor $SLUICE_PARCEL_KEY names one. */
export const PARCEL_KEY_FILE = 'parcel-key.pem';

const ACTIONS: Record<string, number> = { keygen: 0, put: 1, get: 1, inspect: 1, rm: 1 };

const outputFlag = {
  type: 'string',
  short: 'o',
  value: 'FILE',
  help:
    'keygen: where the new key goes (mode 0600, never overwritten); ' +
    'get: where the parcel goes (appears only once complete and verified; - for stdout)',
} satisfies Flag;

const flags = {
  server: {
    ...commonFlags.server,
    help: 'the API (default $SLUICE_SERVER, else the server of `sluice login`)',
  },
  key: {
    type: 'string',
    value: 'FILE',
    help: `the private key (default $SLUICE_PARCEL_KEY, else CONFIG/${PARCEL_KEY_FILE})`,
  },
  show: {
    type: 'string',
    value: 'metadata|owner',
    help: 'for inspect: what to show, metadata (default) or owner',
  },
  output: outputFlag,
  json: commonFlags.json,
  // Its name before it matched pull's --output.
  out: deprecatedAlias(outputFlag, 'output'),
} satisfies Flags;

type Values = FlagValues<typeof flags>;

export const parcelCommand = defineCommand({
  name: 'parcel',
  actions: Object.keys(ACTIONS),
  summary: 'Store and fetch parcels with a P-256 key: keygen, put, get, inspect, rm',
  usage: [
    'keygen [-o FILE] [--json]',
    'put FILE|- [--server URL] [--key FILE] [--json]',
    'get ID -o FILE|- [--server URL] [--key FILE] [--json]',
    'inspect ID [--show metadata|owner] [--server URL] [--json]',
    'rm ID [--server URL] [--key FILE]',
  ].join('\n'),
  flags,
  notes: [
    'put - reads the parcel from stdin. inspect needs no key file. CONFIG is $SLUICE_CONFIG_DIR, else',
    '$XDG_CONFIG_HOME/sluice, else ~/.config/sluice. Parcel ids are 64 hex digits; the address of',
    'a key is the first 20 bytes of SHA-256 over its uncompressed public key (docs/API.md).',
  ],
  positionals: [1, 2],
  async run(values, [action = '', ...args], io) {
    checkAction('parcel', ACTIONS, action, args);
    const json = values.json === true;
    const [arg = ''] = args;
    if (action === 'keygen') {
      if (values.key !== undefined) throw new UsageError('keygen takes --output FILE, not --key');
      return keygen(values, io, json);
    }
    if (values.output !== undefined && action !== 'get') {
      throw new UsageError('--output is for keygen and get');
    }
    if (values.show !== undefined && action !== 'inspect') {
      throw new UsageError('--show is for inspect');
    }
    if (action === 'inspect') return inspect(values, arg, io, json);
    if (action === 'get' && values.output === undefined)
      throw new UsageError('get needs --output FILE');
    const client = new ParcelClient({ baseUrl: serverOf(values), keyFile: keyFileOf(values) });
    if (action === 'put') {
      const result = await client.put(arg === STDIO ? process.stdin : resolve(arg));
      if (json) io.out(JSON.stringify(result));
      else {
        io.out(result.id);
        io.err(result.existed ? 'already stored (same content, same key)' : 'stored');
      }
      return EXIT.ok;
    }
    if (action === 'get' && values.output === STDIO) {
      if (json) throw new UsageError('get -o - writes the bytes to stdout: --json has no room');
      // Checked against its digest before any byte reaches stdout.
      const got = await withTempFile('parcel', async (to) => {
        const r = await client.get(arg, { to });
        await fileToStdout(to);
        return r;
      });
      io.err(`wrote ${got.size} bytes to stdout (sha256 ${got.sha256})`);
      return EXIT.ok;
    }
    if (action === 'get') {
      const to = resolve(values.output ?? '');
      const got = await client.get(arg, { to });
      if (json) io.out(JSON.stringify({ ...got, path: to }));
      else io.err(`wrote ${got.size} bytes to ${to} (sha256 ${got.sha256})`);
      return EXIT.ok;
    }
    await client.remove(arg);
    if (json) io.out(JSON.stringify({ id: arg, removed: true }));
    else io.err(`removed ${arg}`);
    return EXIT.ok;
  },
});

async function keygen(values: Values, io: Io, json: boolean): Promise<number> {
  const out =
    values.output === undefined ? join(configDir(), PARCEL_KEY_FILE) : resolve(values.output);
  if (values.output === undefined) mkdirSync(dirname(out), { recursive: true, mode: 0o700 });
  const address = await ParcelClient.writeKeyFile(out);
  if (json) io.out(JSON.stringify({ address, keyFile: out }));
  else {
    io.out(address);
    io.err(`key written to ${out} (mode 0600); its address is above`);
  }
  return EXIT.ok;
}

/** What inspect shows: `--show`, or the value of its old spelling `--key metadata|owner`. */
function inspectField(values: Values, io: Io): string {
  if (values.key === undefined) return values.show ?? 'metadata';
  if (values.show !== undefined)
    throw new UsageError('give --show (or its old name --key), not both');
  if (values.key !== 'metadata' && values.key !== 'owner') {
    throw new UsageError('inspect needs no key file; --show metadata|owner says what to show');
  }
  io.err('warning: inspect --key is deprecated; use --show');
  return values.key;
}

async function inspect(values: Values, id: string, io: Io, json: boolean): Promise<number> {
  const what = inspectField(values, io);
  if (what !== 'metadata' && what !== 'owner') {
    throw new UsageError('inspect --show must be metadata or owner');
  }
  // Inspect needs no token, so no key pair of the user's: a throwaway one serves the client.
  const client = new ParcelClient({
    baseUrl: serverOf(values),
    privateKey: ParcelClient.generateKey(),
  });
  if (what === 'owner') {
    const { owner } = await client.inspect(id, 'owner');
    io.out(json ? JSON.stringify({ owner }) : owner);
    return EXIT.ok;
  }
  const meta: ParcelMetadata = await client.inspect(id, 'metadata');
  if (json) io.out(JSON.stringify(meta));
  else {
    io.out(`id       ${meta.id}`);
    io.out(`size     ${meta.size}`);
    io.out(`sha256   ${meta.sha256}`);
    io.out(`created  ${meta.createdAt}`);
  }
  return EXIT.ok;
}

function serverOf(values: Values): string {
  const server = values.server ?? (process.env.SLUICE_SERVER || undefined) ?? readConfig()?.server;
  if (server === undefined) {
    throw new UsageError('no server: give --server URL, set $SLUICE_SERVER or `sluice login`');
  }
  return server;
}

function keyFileOf(values: Values): string {
  if (values.key !== undefined) return resolve(values.key);
  return process.env.SLUICE_PARCEL_KEY || join(configDir(), PARCEL_KEY_FILE);
}
