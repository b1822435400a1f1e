// `sluice serve --tls-cert --tls-key`: the whole CLI over HTTPS (API and big-part ranges), the
// client trusting the certificate through NODE_EXTRA_CA_CERTS; and the log a pull leaves.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  finished,
  listeningUrl,
  type RunResult,
  run,
  start,
  TEST_PASSWORD_HASH,
} from './test-cli.js';
import { selfSignedCert } from './test-tls.js';

const ADMIN = 'admin@example.com';
const PASSWORD = 'admin password 12345';
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-tls-test-'));
const { certFile, keyFile } = selfSignedCert(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;

beforeAll(async () => {
  // The key from the environment, the certificate from the flag, the level from the file.
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ passwordHash: TEST_PASSWORD_HASH, logLevel: 'info' }));
  serve = start(
    [
      ...['serve', '--config', config, '--data', join(dir, 'data'), '--port', '0'],
      ...['--init-admin', ADMIN, '--tls-cert', certFile],
    ],
    { env: { SLUICE_ADMIN_PASSWORD: PASSWORD, SLUICE_TLS_KEY: keyFile } },
  );
  serveDone = finished(serve);
  url = await listeningUrl(serve);
});
afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGTERM');
  await serveDone;
});

const client = (args: string[], env: Record<string, string> = {}) =>
  run(args, {
    env: {
      SLUICE_CONFIG_DIR: join(dir, 'client'),
      NODE_EXTRA_CA_CERTS: certFile,
      SLUICE_PASSWORD: PASSWORD,
      ...env,
    },
  });

describe('sluice serve over HTTPS', () => {
  it('a client that does not trust the certificate is refused', async () => {
    const r = await run(['login', '--server', url, '--email', ADMIN], {
      env: { SLUICE_CONFIG_DIR: join(dir, 'untrusting'), SLUICE_PASSWORD: PASSWORD },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/self.signed certificate|SELF_SIGNED/i);
  });

  it('login, push and pull over https give the same bytes; the info log has no range lines', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const login = await client(['login', '--server', url, '--email', ADMIN]);
    expect(login.code, login.stderr).toBe(0);
    const model = join(dir, 'model.bin');
    const data = randomBytes(20 * 1024 * 1024 + 5);
    writeFileSync(model, data);
    const push = await client(['push', model, 'models', '--name', 'm1', '--json']);
    expect(push.code, push.stderr).toBe(0);
    const out = join(dir, 'pulled.bin');
    const pull = await client(['pull', 'models', 'm1', '-o', out, '--json'], {
      SLUICE_HARDWARE_HASH: 'e'.repeat(64),
    });
    expect(pull.code, pull.stderr).toBe(0);
    expect(readFileSync(out).equals(data)).toBe(true);

    serve.kill('SIGTERM');
    const r = await serveDone;
    expect(r.code, r.stderr).toBe(0);
    const requests = r.stdout
      .split('\n')
      .filter((l) => l.includes('"request completed"'))
      .map((l) => JSON.parse(l) as { req: { method: string; url: string } });
    const lines = requests.map((l) => `${l.req.method} ${l.req.url.split('?')[0]}`);
    expect(lines).toContain('POST /login');
    expect(lines.filter((l) => l === 'POST /resources/get/models')).toHaveLength(1);
    expect(lines.some((l) => l.endsWith('/big'))).toBe(false);
    expect(r.stdout).not.toContain('incoming request');
  });

  it('refuses half a pair, an unreadable file and a non-PEM file, quoting no key', async () => {
    const data = join(dir, 'refused');
    const only = await run(['serve', '--data', data, '--port', '0', '--tls-cert', certFile]);
    expect(only.code).toBe(1);
    expect(only.stderr).toContain('only the certificate is set (from --tls-cert)');
    const missing = await run([
      'serve',
      '--data',
      data,
      '--port',
      '0',
      '--tls-cert',
      certFile,
      '--tls-key',
      join(dir, 'nope.pem'),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `cannot read the TLS key ${join(dir, 'nope.pem')} (from --tls-key): ENOENT`,
    );
    const notPem = await run(['serve', '--data', data, '--port', '0', '--tls-cert', keyFile], {
      env: { SLUICE_TLS_KEY: keyFile },
    });
    expect(notPem.code).toBe(1);
    expect(notPem.stderr).toContain('tls.cert holds no PEM certificate (from --tls-cert)');
    const keyLine = readFileSync(keyFile, 'utf8').split('\n')[1] ?? '';
    for (const r of [only, missing, notPem]) expect(r.stderr).not.toContain(keyLine);
  });
});
