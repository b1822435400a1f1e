import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer, initAdmin } from '@sluice/server';
import { type Command, EXIT, type Io, UsageError } from '../command.js';
import { readPassword } from '../password.js';
import { testScryptParams } from '../testScrypt.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run the resource API on the embedded default (one local data directory)',
  usage: '[--data DIR] [--host 127.0.0.1] [--port 8080] [--init-admin EMAIL [--init-only]]',
  help: [
    '  --data DIR          data directory (default $SLUICE_DATA_DIR, else $XDG_DATA_HOME/sluice,',
    '                      else ~/.local/share/sluice); one server per directory',
    '  --host HOST         address to listen on (default 127.0.0.1)',
    '  --port PORT         port to listen on (default 8080; 0 picks a free one)',
    '  --init-admin EMAIL  first create this ApiAdmin (password from $SLUICE_ADMIN_PASSWORD or a',
    '                      prompt; there is no default password)',
    '  --init-only         with --init-admin: create the admin and exit without serving',
    '',
    'Logs JSON lines to stdout; prints `listening on URL` to stderr once ready.',
    'SIGINT or SIGTERM closes it gracefully: in-flight transfers finish, then exit 0.',
  ],
  options: {
    data: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'init-admin': { type: 'string' },
    'init-only': { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const dataDir = resolve(typeof values.data === 'string' ? values.data : defaultDataDir());
    const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
    const port = parsePort(typeof values.port === 'string' ? values.port : '8080');
    const adminEmail = values['init-admin'];
    if (values['init-only'] && typeof adminEmail !== 'string') {
      throw new UsageError('--init-only needs --init-admin EMAIL');
    }
    const scrypt = testScryptParams();
    if (scrypt !== undefined) io.err('warning: SLUICE_TEST_SCRYPT_N is set: weak password hashes');
    if (typeof adminEmail === 'string') {
      const password = await readPassword({
        env: 'SLUICE_ADMIN_PASSWORD',
        stdin: false,
        prompt: `password for the new ApiAdmin ${adminEmail}: `,
        confirm: true,
      });
      const admin = await initAdmin(dataDir, adminEmail, password, scrypt ? { scrypt } : {});
      io.err(`created ApiAdmin ${admin.email} in ${dataDir}`);
      if (values['init-only']) return EXIT.ok;
    }
    return serve(dataDir, host, port, scrypt, io);
  },
};

async function serve(
  dataDir: string,
  host: string,
  port: number,
  scrypt: ReturnType<typeof testScryptParams>,
  io: Io,
): Promise<number> {
  const server = await createServer({ dataDir, logger: true, ...(scrypt ? { scrypt } : {}) });
  let url: string;
  try {
    url = await server.app.listen({ host, port });
  } catch (e) {
    await server.close();
    throw e;
  }
  io.err(`listening on ${url} (data ${dataDir})`);
  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  io.err(`${signal}: closing (finishing in-flight requests)…`);
  // A second signal means "now": leave without waiting for slow transfers.
  const force = () => process.exit(EXIT.failed);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await server.close();
  io.err('closed');
  return EXIT.ok;
}

function defaultDataDir(): string {
  if (process.env.SLUICE_DATA_DIR) return process.env.SLUICE_DATA_DIR;
  if (process.env.XDG_DATA_HOME) return join(process.env.XDG_DATA_HOME, 'sluice');
  return join(homedir(), '.local', 'share', 'sluice');
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`bad port '${text}'`);
  return n;
}
