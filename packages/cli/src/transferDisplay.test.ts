// What a transfer shows and how it stops, through the built binary against `sluice serve` on
// loopback: the progress display on a pseudo-terminal (width, rate, ETA), none when stderr is a
// pipe or with -q/--no-progress, -v's range lines, and SIGINT/SIGTERM mid-pull (exit 130/143,
// nothing left at the destination).
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fastHashConfig,
  finished,
  listeningUrl,
  type RunResult,
  run,
  runOnTty,
  skipTty,
  start,
} from './test-cli.js';

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'c'.repeat(64);
/** Big enough that a pull on loopback takes a good part of a second or more. */
const SIZE = 160 * 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'sluice-transfer-display-'));
const config = fastHashConfig(dir);
const configOf = (who: string) => join(dir, `config-${who}`);
let serve: ChildProcess;
let serveDone: Promise<RunResult>;
let model: string;

const device = { SLUICE_CONFIG_DIR: configOf('device'), SLUICE_HARDWARE_HASH: HARDWARE };
const pullEnv = { ...device, SLUICE_PASSWORD: PASSWORD };

async function ok(result: Promise<RunResult>): Promise<RunResult> {
  const r = await result;
  expect(r.code, r.stderr).toBe(0);
  return r;
}

beforeAll(async () => {
  serve = start(
    [
      'serve',
      '--config',
      config,
      '--data',
      join(dir, 'data'),
      '--port',
      '0',
      '--init-admin',
      ADMIN,
    ],
    { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
  );
  serveDone = finished(serve);
  const url = await listeningUrl(serve);
  const admin = { SLUICE_CONFIG_DIR: configOf('admin') };
  await ok(
    run(['login', '--server', url, '--email', ADMIN], {
      env: { ...admin, SLUICE_PASSWORD: ADMIN_PASSWORD },
    }),
  );
  for (const [email, role] of [
    [UPLOADER, 'ResourceUploader'],
    [DEVICE, 'Operator'],
  ] as const) {
    await ok(
      run(['user', 'create', email, '--role', role], {
        env: { ...admin, SLUICE_NEW_PASSWORD: PASSWORD },
      }),
    );
  }
  const uploader = { SLUICE_CONFIG_DIR: configOf('uploader'), SLUICE_PASSWORD: PASSWORD };
  await ok(run(['login', '--server', url, '--email', UPLOADER], { env: uploader }));
  await ok(run(['login', '--server', url, '--email', DEVICE], { env: pullEnv }));
  model = join(dir, 'model.bin');
  writeFileSync(model, randomBytes(SIZE));
  await ok(run(['push', model, 'models', '--name', 'big'], { env: uploader }));
}, 120_000);

afterAll(async () => {
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGKILL');
    await serveDone;
  }
  rmSync(dir, { recursive: true, force: true });
});

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A fresh, empty directory to pull into. */
function outDir(name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  return d;
}

/** Every state of the progress line: what each `\r` redraw leaves, escape codes removed. */
function redraws(output: string): string[] {
  return output
    .split(/[\r\n]/)
    .map((l) => l.replaceAll('\u001b[K', ''))
    .filter((l) => l.startsWith('models/big') || /^\[[#-]+\]/.test(l));
}

describe('the progress display', () => {
  it.skipIf(skipTty)(
    'on an 80-column terminal: every redraw fits in 79 columns, with the current rate and an ETA',
    async () => {
      const out = outDir('tty');
      const r = await runOnTty(['pull', 'models', 'big', '-o', out], { env: pullEnv, columns: 80 });
      expect(r.code, r.stdout).toBe(0);
      const lines = redraws(r.stdout);
      expect(lines.length, r.stdout).toBeGreaterThan(2);
      for (const line of lines) {
        expect(line.length, line).toBeLessThanOrEqual(79);
        expect(line).toMatch(/ (\d+\.\d|--) MB\/s ETA +(\d+:\d\d(:\d\d)?|--:--)$/);
      }
      // Fields of fixed width: the line keeps its length from the first redraw to the last.
      expect(new Set(lines.map((l) => l.length)).size).toBe(1);
      // Once two samples are apart in time the rate is a number, and the ETA with it.
      expect(lines.some((l) => / \d+\.\d MB\/s ETA +\d+:\d\d$/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(
        /^models\/big \[#+\] 100% 160\.0 MiB \/ 160\.0 MiB .* ETA +0:00$/,
      );
      expect(sha(join(out, 'big'))).toBe(sha(model));
    },
    60_000,
  );

  it.skipIf(skipTty)(
    'on a terminal, -q and --no-progress draw none',
    async () => {
      for (const flag of ['-q', '--no-progress']) {
        const out = outDir(`tty${flag}`);
        const r = await runOnTty(['pull', 'models', 'big', '-o', out, flag], {
          env: pullEnv,
          columns: 80,
        });
        expect(r.code, r.stdout).toBe(0);
        expect(r.stdout, flag).not.toContain('ETA');
        expect(r.stdout).not.toContain('\r\u001b[K');
        if (flag === '-q') expect(r.stdout.trim()).toBe('');
        else expect(r.stdout).toContain('pulled models/big v1');
      }
    },
    60_000,
  );

  it('with stderr piped no progress is written; -v writes a line per range instead', async () => {
    const plain = await ok(run(['pull', 'models', 'big', '-o', outDir('piped')], { env: pullEnv }));
    expect(plain.stderr).not.toMatch(/\r|ETA|MB\/s ETA/);
    expect(plain.stderr).toMatch(/^pulled models\/big v1 → /);
    const verbose = await ok(
      run(['-v', 'pull', 'models', 'big', '-o', outDir('verbose')], { env: pullEnv }),
    );
    const ranges = verbose.stderr.split('\n').filter((l) => /^models\/big: \+/.test(l));
    expect(ranges.length).toBeGreaterThan(2);
    expect(ranges.at(-1)).toMatch(/160\.0 MiB of 160\.0 MiB after \d+ ms$/);
    expect(verbose.stderr).toMatch(/sluice pull: exit 0 after \d+ ms\n$/);
    expect(verbose.stderr).not.toContain('ETA');
  }, 60_000);
});

describe('stopping a pull', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} mid-pull exits ${code} and leaves nothing at the destination`, async () => {
      const out = outDir(`stopped-${signal}`);
      // -v prints a line per range: the first one says the transfer is under way.
      const child = start(['-v', 'pull', 'models', 'big', '-o', join(out, 'big')], {
        env: pullEnv,
      });
      const done = finished(child);
      await new Promise<void>((resolve) => {
        let seen = '';
        child.stderr?.on('data', (d: Buffer | string) => {
          seen += String(d);
          if (/models\/big: \+.* of 160\.0 MiB/.test(seen)) resolve();
        });
      });
      child.kill(signal);
      const r = await done;
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toContain(`sluice pull: interrupted (${signal})`);
      expect(r.stderr).not.toMatch(/160\.0 MiB of 160\.0 MiB/); // stopped before the end
      expect(readdirSync(out)).toEqual([]);
    }, 60_000);
  }
});
