// The client behind a forward proxy: HTTP_PROXY / https_proxy / NO_PROXY, for the API and the
// big-part ranges, through the built CLI against `sluice serve` on loopback.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastHashConfig, finished, listeningUrl, type RunResult, run, start } from './test-cli.js';
import { startProxy, type TestProxy } from './test-proxy.js';
import { selfSignedCert } from './test-tls.js';

const ADMIN = 'admin@example.com';
const PASSWORD = 'admin password 12345';
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-proxy-test-'));
const { certFile, keyFile } = selfSignedCert(dir);
const model = join(dir, 'model.bin');
const data = randomBytes(12 * 1024 * 1024 + 3);
writeFileSync(model, data);

let proxy: TestProxy;
const servers: { child: ChildProcess; done: Promise<RunResult> }[] = [];
beforeAll(async () => {
  proxy = await startProxy();
});
afterAll(async () => {
  for (const { child, done } of servers) {
    child.kill('SIGTERM');
    await done;
  }
  await proxy.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(name: string, tls: string[] = []): Promise<string> {
  const child = start(
    [
      ...['serve', '--config', fastHashConfig(dir), '--data', join(dir, name), '--port', '0'],
      ...['--init-admin', ADMIN, ...tls],
    ],
    { env: { SLUICE_ADMIN_PASSWORD: PASSWORD } },
  );
  servers.push({ child, done: finished(child) });
  return listeningUrl(child);
}

/** login, push and pull as the admin; the pulled bytes must be the pushed ones. */
async function roundTrip(url: string, name: string, env: Record<string, string | undefined>) {
  const base = {
    SLUICE_CONFIG_DIR: join(dir, `client-${name}`),
    SLUICE_PASSWORD: PASSWORD,
    SLUICE_HARDWARE_HASH: 'f'.repeat(64),
    NODE_EXTRA_CA_CERTS: certFile,
    ...env,
  };
  for (const args of [
    ['login', '--server', url, '--email', ADMIN],
    ['push', model, 'models', '--name', name],
    ['pull', 'models', name, '-o', join(dir, `${name}.out`)],
  ]) {
    const r = await run(args, { env: base });
    expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
  }
  expect(readFileSync(join(dir, `${name}.out`)).equals(data)).toBe(true);
}

describe('the client behind a forward proxy', () => {
  it('HTTP_PROXY: every API request and every range goes through it, as absolute URIs', async () => {
    const url = await serve('plain');
    proxy.seen.length = 0;
    await roundTrip(url, 'plain', { HTTP_PROXY: proxy.url });
    expect(proxy.seen).toContain(`POST ${url}/login`);
    expect(proxy.seen).toContain(`POST ${url}/resources/models`);
    expect(proxy.seen).toContain(`POST ${url}/resources/get/models`);
    expect(
      proxy.seen.filter((s) => s.startsWith(`GET ${url}/resources/models/plain/big`)).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('NO_PROXY names the server: nothing goes through the proxy', async () => {
    const url = await serve('bypass');
    proxy.seen.length = 0;
    await roundTrip(url, 'bypass', { http_proxy: proxy.url, NO_PROXY: 'localhost,127.0.0.1' });
    expect(proxy.seen).toEqual([]);
  });

  it('https_proxy: HTTPS through CONNECT tunnels, the proxy seeing only the host', async () => {
    const url = await serve('tls', ['--tls-cert', certFile, '--tls-key', keyFile]);
    proxy.seen.length = 0;
    await roundTrip(url, 'tls', { https_proxy: proxy.url });
    const host = new URL(url).host;
    expect(proxy.seen.length).toBeGreaterThanOrEqual(1);
    expect(proxy.seen.every((s) => s === `CONNECT ${host}`)).toBe(true);
  });

  it('a proxy that is down is reported as a network error', async () => {
    const url = await serve('down');
    const r = await run(['login', '--server', url, '--email', ADMIN], {
      env: {
        SLUICE_CONFIG_DIR: join(dir, 'client-down'),
        SLUICE_PASSWORD: PASSWORD,
        HTTP_PROXY: 'http://127.0.0.1:9',
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `cannot reach the proxy http://127.0.0.1:9 (for the sluice server at ${url}): connection refused`,
    );
  });

  it('doctor probes the server through the proxy and names it', async () => {
    const url = await serve('doctor');
    proxy.seen.length = 0;
    const r = await run(['doctor', '--server', url, '--json'], { env: { HTTP_PROXY: proxy.url } });
    expect(r.code, r.stderr).toBe(0);
    const { server } = JSON.parse(r.stdout);
    expect(server).toMatchObject({
      url: `${url}/`,
      proxy: proxy.url,
      reachable: true,
      status: 200,
    });
    expect(proxy.seen).toEqual([`GET ${url}/.well-known/jwks.json`]);
    const text = await run(['doctor', '--server', url], { env: { HTTP_PROXY: proxy.url } });
    expect(text.stdout).toContain(`server          ${url}/ via proxy ${proxy.url} reachable`);
    // NO_PROXY exempts the server: the probe goes direct and no proxy is named.
    proxy.seen.length = 0;
    const direct = await run(['doctor', '--server', url, '--json'], {
      env: { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' },
    });
    expect(JSON.parse(direct.stdout).server).not.toHaveProperty('proxy');
    expect(proxy.seen).toEqual([]);
  });

  it('doctor tells a proxy that is down from a server the proxy cannot reach', async () => {
    const down = await run(['doctor', '--server', 'http://127.0.0.1:9', '--json'], {
      env: { HTTP_PROXY: 'http://user:secret@127.0.0.1:9' },
    });
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout).server).toMatchObject({
      proxy: 'http://127.0.0.1:9',
      reachable: false,
      error: 'proxy: connection refused',
    });
    expect(down.stdout + down.stderr).not.toContain('secret');
    const behind = await run(['doctor', '--server', 'http://127.0.0.1:9', '--json'], {
      env: { HTTP_PROXY: proxy.url },
    });
    expect(behind.code).toBe(1);
    expect(JSON.parse(behind.stdout).server).toMatchObject({
      proxy: proxy.url,
      reachable: false,
      status: 502,
      error: 'the proxy answered HTTP 502',
    });
  });
});
