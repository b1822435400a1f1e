import { resolve } from 'node:path';
import {
  generatePublisherKey,
  type PublisherKeyInfo,
  type PublisherKeyResponse,
  type PublisherKeysResponse,
  readPublisherKey,
} from '@sluice/core';
import { checkAction } from '../checkAction.js';
import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { publisherKeyPath } from '../config.js';
import { deprecatedAlias } from '../flags.js';
import { publisherKeyFileFlag } from '../publisherFlags.js';
import { resolveLogin, serverSession } from '../storedSession.js';

const ACTIONS: Record<string, number> = { generate: 0, show: 0, register: 0, list: 0 };

export const keysCommand = defineCommand({
  name: 'keys',
  actions: Object.keys(ACTIONS),
  summary: 'Publisher keys that sign what you push: generate, show, register, list',
  usage: [
    'generate [--sign-key FILE]',
    'show [--sign-key FILE]',
    'register [--sign-key FILE]',
    'list [--json]',
  ].join('\n'),
  flags: {
    'sign-key': publisherKeyFileFlag,
    key: deprecatedAlias(publisherKeyFileFlag, 'sign-key'),
    json: { ...commonFlags.json, help: 'for list: print {publisherKeys:[{publicKey,addedAt}]}' },
    server: { ...commonFlags.server, help: 'for register and list: the resource API' },
    'password-stdin': {
      ...commonFlags['password-stdin'],
      help: 'for register and list: read the password from stdin when not logged in',
    },
  },
  notes: [
    'generate writes a new Ed25519 key (never over an existing file) and prints its public key on',
    'stdout, the line devices trust (`sluice keys generate > publisher.pub`, then `pull --trust',
    'publisher.pub`). register adds it to your account: the server accepts uploads it signs only',
    'from you. push signs with it (the same --sign-key, default the file above when it exists).',
  ],
  positionals: [1, 1],
  async run(values, [action = ''], io) {
    checkAction('keys', ACTIONS, action, []);
    const path = resolve(values['sign-key'] ?? publisherKeyPath());
    if (action === 'generate') {
      const { publicKey } = await generatePublisherKey(path);
      io.err(`wrote a new publisher key to ${path} (mode 0600); its public key:`);
      io.out(publicKey);
      io.err('register it with `sluice keys register`; devices trust it with `pull --trust`');
      return EXIT.ok;
    }
    if (action === 'show') {
      io.out((await readPublisherKey(path)).publicKey);
      return EXIT.ok;
    }
    const { session } = await serverSession(resolveLogin(values.server), {
      passwordStdin: values['password-stdin'],
    });
    if (action === 'register') {
      const { publicKey } = await readPublisherKey(path);
      const { publisherKey } = await session.request<PublisherKeyResponse>(
        'POST',
        '/me/publisher-keys',
        { json: { publicKey } },
      );
      io.err(
        `registered ${publisherKey.publicKey} to your account (since ${publisherKey.addedAt})`,
      );
      return EXIT.ok;
    }
    const { publisherKeys } = await session.request<PublisherKeysResponse>(
      'GET',
      '/me/publisher-keys',
    );
    if (values.json) io.out(JSON.stringify({ publisherKeys }));
    else for (const k of publisherKeys) io.out(describe(k));
    return EXIT.ok;
  },
});

function describe(k: PublisherKeyInfo): string {
  return `${k.publicKey}  added ${k.addedAt}`;
}
