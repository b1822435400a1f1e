// `sluice parcel` as a user runs it: the built binary against `sluice serve` (a child process over
// a fresh data directory).
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finished, listeningUrl, type RunResult, run, start } from '../test-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-parcel-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let url: string;
afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGTERM');
    await serveDone;
  }
});

beforeAll(async () => {
  serve = start(['serve', '--data', join(dir, 'data'), '--port', '0']);
  serveDone = finished(serve);
  url = await listeningUrl(serve);
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A config directory per key holder, as if each were another machine. */
const configOf = (who: string) => join(dir, `config-${who}`);
const as = (who: string, args: string[], env: Record<string, string> = {}, input?: string) =>
  run(args, {
    env: { SLUICE_CONFIG_DIR: configOf(who), SLUICE_PARCEL_KEY: undefined, ...env },
    ...(input === undefined ? {} : { input }),
  });

describe('sluice parcel', () => {
  it('keygen, put, inspect, get, rm: a round trip, with --json', async () => {
    const key = await as('alice', ['parcel', 'keygen', '--json']);
    expect(key.code).toBe(0);
    const { address, keyFile } = JSON.parse(key.stdout) as { address: string; keyFile: string };
    expect(address).toMatch(/^[0-9a-f]{40}$/);
    expect(keyFile).toBe(join(configOf('alice'), 'parcel-key.pem'));
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const keyText = readFileSync(keyFile, 'utf8');
    const again = await as('alice', ['parcel', 'keygen']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refusing to overwrite');
    expect(readFileSync(keyFile, 'utf8')).toBe(keyText);

    const content = randomBytes(300_000);
    const file = join(dir, 'payload.bin');
    writeFileSync(file, content);
    const put = await as('alice', ['parcel', 'put', file, '--server', url, '--json']);
    expect(put.code).toBe(0);
    const { id, existed } = JSON.parse(put.stdout) as { id: string; existed: boolean };
    expect(existed).toBe(false);
    expect(id).toBe(
      sha(Buffer.concat([Buffer.from(address, 'hex'), Buffer.from(sha(content), 'hex')])),
    );
    const dup = await as('alice', ['parcel', 'put', file], { SLUICE_SERVER: url });
    expect(dup.code).toBe(0);
    expect(dup.stdout.trim()).toBe(id);
    expect(dup.stderr).toContain('already stored');

    const meta = await as('bob', ['parcel', 'inspect', id, '--server', url, '--json']);
    expect(meta.code).toBe(0);
    expect(JSON.parse(meta.stdout)).toMatchObject({
      id,
      size: content.length,
      sha256: sha(content),
    });
    const owner = await as('bob', ['parcel', 'inspect', id, '--show', 'owner', '--server', url]);
    expect(owner.stdout.trim()).toBe(address);
    expect(owner.stderr).toBe('');
    // Its old spelling still works, saying once that it is deprecated.
    const old = await as('bob', ['parcel', 'inspect', id, '--key', 'owner', '--server', url]);
    expect(old.stdout.trim()).toBe(address);
    expect(old.stderr.trim()).toBe('warning: inspect --key is deprecated; use --show');
    const human = await as('bob', ['parcel', 'inspect', id, '--server', url]);
    expect(human.stdout).toContain(`sha256   ${sha(content)}`);

    const out = join(dir, 'fetched.bin');
    const get = await as('alice', ['parcel', 'get', id, '--output', out, '--server', url]);
    expect(get.code).toBe(0);
    expect(readFileSync(out).equals(content)).toBe(true);

    const rm = await as('alice', ['parcel', 'rm', id, '--server', url]);
    expect(rm.code).toBe(0);
    const gone = await as('alice', [
      'parcel',
      'get',
      id,
      '--out',
      join(dir, 'gone.bin'),
      '--server',
      url,
    ]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('(ERR_GONE)');
    // --out, the old name of --output, still works and says so.
    expect(gone.stderr).toContain('warning: --out is deprecated; use --output');
    expect(existsSync(join(dir, 'gone.bin'))).toBe(false);
    expect((await as('bob', ['parcel', 'inspect', id, '--server', url])).stderr).toContain(
      '(ERR_GONE)',
    );
  });

  it('--key FILE and $SLUICE_PARCEL_KEY, stdin with put -, and another key refused', async () => {
    const keyFile = join(dir, 'carol.pem');
    const made = await as('carol', ['parcel', 'keygen', '-o', keyFile]);
    expect(made.code).toBe(0);
    const address = made.stdout.trim();
    const put = await as(
      'carol',
      ['parcel', 'put', '-', '--server', url, '--key', keyFile],
      {},
      'from stdin',
    );
    expect(put.code).toBe(0);
    const id = put.stdout.trim();
    const owner = await as('dave', ['parcel', 'inspect', id, '--show', 'owner', '--server', url]);
    expect(owner.stdout.trim()).toBe(address);
    const out = join(dir, 'stdin.out');
    const viaEnv = await as('carol', ['parcel', 'get', id, '-o', out], {
      SLUICE_PARCEL_KEY: keyFile,
      SLUICE_SERVER: url,
    });
    expect(viaEnv.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('from stdin');
    const toStdout = await as('carol', ['parcel', 'get', id, '-o', '-'], {
      SLUICE_PARCEL_KEY: keyFile,
      SLUICE_SERVER: url,
    });
    expect(toStdout).toMatchObject({ code: 0, stdout: 'from stdin' });
    expect(toStdout.stderr).toContain('bytes to stdout');

    expect((await as('dave', ['parcel', 'keygen'])).code).toBe(0);
    const stolen = await as('dave', [
      'parcel',
      'get',
      id,
      '-o',
      join(dir, 'stolen'),
      '--server',
      url,
    ]);
    expect(stolen.code).toBe(1);
    expect(stolen.stderr).toContain('(ERR_FORBIDDEN)');
    const rm = await as('dave', ['parcel', 'rm', id, '--server', url]);
    expect(rm.stderr).toContain('(ERR_FORBIDDEN)');
    expect(readdirSync(dir).filter((n) => n.includes('stolen'))).toEqual([]);
  });

  it('usage errors exit 2; a missing key file or server exits 1 or 2 with a clear message', async () => {
    const help = await as('erin', ['parcel', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: sluice parcel keygen');
    for (const args of [
      ['parcel'],
      ['parcel', 'frobnicate', 'x'],
      ['parcel', 'get', 'ab'.repeat(32), '--server', url],
      ['parcel', 'put'],
      ['parcel', 'inspect', 'ab'.repeat(32), '--key', 'secret', '--server', url],
      ['parcel', 'inspect', 'ab'.repeat(32), '--show', 'secret', '--server', url],
      ['parcel', 'inspect', 'ab'.repeat(32), '--show', 'owner', '--key', 'owner', '--server', url],
      ['parcel', 'get', 'ab'.repeat(32), '-o', join(dir, 'x'), '--show', 'owner', '--server', url],
    ]) {
      expect((await as('erin', args)).code).toBe(2);
    }
    const noServer = await as('erin', ['parcel', 'inspect', 'ab'.repeat(32)]);
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toContain('no server');
    const noKey = await as('erin', ['parcel', 'put', join(dir, 'payload.bin'), '--server', url]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('(ERR_IO)');
    const badId = await as('erin', ['parcel', 'inspect', 'nope', '--server', url]);
    expect(badId.code).toBe(1);
    expect(badId.stderr).toContain('(ERR_INVALID_ARG)');
  });
});
