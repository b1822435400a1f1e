// `sluice batch` as a user runs it: the built binary against `sluice serve` in a child process.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
} from '../test-cli.js';
import { readBatchFile } from './batch.js';

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'c'.repeat(64);

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-batch-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let serve: ChildProcess | undefined;
let serveDone: Promise<RunResult>;
afterAll(async () => {
  if (serve && serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGKILL');
    await serveDone;
  }
});

const configOf = (who: string) => join(dir, `config-${who}`);
const device = { SLUICE_PASSWORD: PASSWORD, SLUICE_HARDWARE_HASH: HARDWARE };
function as(who: string, args: string[], env: Record<string, string> = {}) {
  return run(args, { env: { SLUICE_CONFIG_DIR: configOf(who), ...env } });
}
const batch = (args: string[]) => as('device', ['batch', ...args], device);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Plaintext SHA-256 of each pushed resource, by name (folder 'models'). */
const shas = new Map<string, string>();

beforeAll(async () => {
  const config = fastHashConfig(dir);
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
  const must = (r: RunResult) => expect(r.code, r.stderr).toBe(0);
  must(
    await as('admin', ['login', '--server', url, '--email', ADMIN], {
      SLUICE_PASSWORD: ADMIN_PASSWORD,
    }),
  );
  for (const [email, role] of [
    [UPLOADER, 'ResourceUploader'],
    [DEVICE, 'Operator'],
  ] as const) {
    must(
      await as('admin', ['user', 'create', email, '--role', role], {
        SLUICE_NEW_PASSWORD: PASSWORD,
      }),
    );
  }
  must(
    await as('uploader', ['login', '--server', url, '--email', UPLOADER], {
      SLUICE_PASSWORD: PASSWORD,
    }),
  );
  must(
    await as('device', ['login', '--server', url, '--email', DEVICE], {
      SLUICE_PASSWORD: PASSWORD,
    }),
  );
  for (let i = 0; i < 3; i++) {
    const plain = randomBytes(200_000 + i * 70_001);
    const src = join(dir, `src-${i}.bin`);
    writeFileSync(src, plain);
    must(await as('uploader', ['push', src, 'models', '--name', `m${i}.bin`]));
    shas.set(`m${i}.bin`, sha(plain));
  }
});

/** A fresh directory with the batch file `name` holding `text`; returns the file's path. */
function batchFile(name: string, text: string): string {
  const d = mkdtempSync(join(dir, 'job-'));
  const file = join(d, name);
  writeFileSync(file, text);
  return file;
}

describe('sluice batch', () => {
  it('loads a YAML list with --json: a line per resource, a summary, exit 1 for the one missing', async () => {
    const file = batchFile(
      'job.yaml',
      [
        '# relative paths are against this file',
        '- {folder: models, name: m0.bin, to: out/first.bin}',
        '- folder: models',
        '  name: m1.bin',
        '  to: out/nested/deeper/',
        '- {folder: models, name: missing.bin, to: out/missing.bin}',
        '- {folder: models, name: m2.bin}',
      ].join('\n'),
    );
    const job = join(file, '..');
    const r = await batch([file, '--json', '--concurrency', '2']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toBe('');
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(5);
    const byName = new Map(lines.slice(0, 4).map((l) => [l.name, l]));
    expect(byName.get('m0.bin')).toEqual({
      folder: 'models',
      name: 'm0.bin',
      to: join(job, 'out/first.bin'),
      version: 1,
      ok: true,
      size: 200_000,
      fromCache: false,
      publisher: null,
    });
    expect(byName.get('m1.bin').to).toBe(join(job, 'out/nested/deeper/m1.bin'));
    expect(byName.get('m2.bin').to).toBe(join(job, 'm2.bin'));
    expect(byName.get('missing.bin')).toMatchObject({ ok: false, code: 'ERR_NOT_FOUND' });
    expect(lines[4].summary).toMatchObject({ count: 4, ok: 3, failed: 1, fromCache: 0 });
    expect(lines[4].summary.bytes).toBe(200_000 + 270_001 + 340_002);
    for (const l of lines.slice(0, 4).filter((l) => l.ok)) {
      expect(sha(readFileSync(l.to))).toBe(shas.get(l.name));
    }
    // Nothing at all for the one that failed, and no temp file anywhere.
    expect(readdirSync(join(job, 'out')).sort()).toEqual(['first.bin', 'nested']);
    expect(readdirSync(job).sort()).toEqual(['job.yaml', 'm2.bin', 'out']);
    expect(r.stdout).not.toContain(PASSWORD);
  });

  it('loads a JSON list into a cache; the second run decrypts every big part from it', async () => {
    const file = batchFile(
      'job.json',
      JSON.stringify(
        ['m0.bin', 'm1.bin', 'm2.bin'].map((name) => ({ folder: 'models', name, to: `a/${name}` })),
      ),
    );
    const cache = join(dir, 'cache');
    const first = await batch([file, '--cache', cache]);
    expect(first.code, first.stderr).toBe(0);
    // Not a terminal: one line per resource, then the summary.
    expect(first.stderr).toMatch(
      /^loaded models\/m0\.bin → .*a\/m0\.bin \(195\.3 KiB, unsigned\)$/m,
    );
    expect(first.stderr).toMatch(
      /^batch: 3 of 3 loaded \(791\.0 KiB in \d+ ms, [\d.]+ MB\/s\)\n$/m,
    );
    const again = await batch([file, '--cache', cache, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout.trim().split('\n').at(-1) ?? '').summary;
    expect(summary).toMatchObject({ count: 3, ok: 3, failed: 0, fromCache: 3 });
    for (const name of shas.keys()) {
      expect(sha(readFileSync(join(file, '..', 'a', name)))).toBe(shas.get(name));
    }
  });

  it('--trust refuses every unsigned resource with ERR_UNTRUSTED_PUBLISHER and writes none', async () => {
    const file = batchFile(
      'job.json',
      JSON.stringify(
        ['m0.bin', 'm1.bin'].map((name) => ({ folder: 'models', name, to: `t/${name}` })),
      ),
    );
    const trusted = Buffer.alloc(32, 9).toString('base64');
    const r = await batch([file, '--trust', trusted, '--json']);
    expect(r.code).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.slice(0, 2).map((l) => l.code)).toEqual([
      'ERR_UNTRUSTED_PUBLISHER',
      'ERR_UNTRUSTED_PUBLISHER',
    ]);
    // The batch makes the `to` directories first; no file, not even a temp, is left in them.
    expect(readdirSync(join(file, '..', 't'))).toEqual([]);
  });

  it('refuses a malformed file with exit 2 and a message naming the entry, writing nothing', async () => {
    const file = batchFile(
      'job.yaml',
      '- {folder: models, name: m0.bin}\n- {folder: ../etc, name: m1.bin}\n',
    );
    const r = await batch([file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/job\.yaml: entry 2 \(line 2\): invalid folder "\.\.\/etc"/);
    expect(readdirSync(join(file, '..'))).toEqual(['job.yaml']);
    const broken = await batch([batchFile('job.json', '[{"folder": "models"')]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/job\.json:1: not valid JSON or YAML/);
    const missing = await batch([join(dir, 'no-such.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const zero = await batch([
      batchFile('ok.yaml', '- {folder: models, name: m0.bin}\n'),
      '--concurrency',
      '0',
    ]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--concurrency must be a positive integer');
  });

  it('readBatchFile names what is wrong and where', () => {
    const cases: [string, string, RegExp][] = [
      ['bad.yaml', '- {folder: models, name: m0.bin\n', /bad\.yaml:\d+: not valid JSON or YAML/],
      ['map.yaml', 'folder: models\nname: m0.bin\n', /expected a list of \{folder, name, to\}/],
      ['empty.json', '[]', /the list is empty/],
      ['scalar.yaml', '- m0.bin\n', /entry 1: expected \{folder, name, to\}/],
      ['noname.yaml', '- {folder: models}\n', /entry 1 \(line 1\): invalid name undefined/],
      ['typo.yaml', '- {folder: models, name: m0.bin, too: x.bin}\n', /unknown key 'too'/],
      ['to.yaml', '- {folder: models, name: m0.bin, to: 7}\n', /'to' must be a path/],
      [
        'twice.yaml',
        '- {folder: models, name: m0.bin, to: x.bin}\n\n- {folder: models, name: m1.bin, to: ./x.bin}\n',
        /entry 2 \(line 3\): writes to .*x\.bin, as entry 1 does/,
      ],
    ];
    for (const [name, text, message] of cases) {
      expect(() => readBatchFile(batchFile(name, text)), name).toThrow(message);
    }
    const file = batchFile(
      'ok.json',
      '[{"folder": "f", "name": "n1", "to": "/abs/x"}, {"folder": "f", "name": "n2", "to": "d/"}]',
    );
    expect(readBatchFile(file)).toEqual([
      { folder: 'f', name: 'n1', to: '/abs/x' },
      { folder: 'f', name: 'n2', to: join(file, '..', 'd', 'n2') },
    ]);
  });

  it.skipIf(skipTty)(
    'on a terminal: an aggregate progress bar, failures and the summary after it',
    async () => {
      const file = batchFile(
        'job.yaml',
        '- {folder: models, name: m0.bin}\n- {folder: models, name: m1.bin}\n- {folder: models, name: nope.bin}\n',
      );
      const r = await runOnTty(['batch', file], {
        env: { SLUICE_CONFIG_DIR: configOf('device'), ...device },
      });
      expect(r.code, r.stdout).toBe(1);
      expect(r.stdout).toMatch(/\rbatch of 3 \[#+\] 100% 459\.0 KiB \/ 459\.0 KiB/);
      expect(r.stdout).toMatch(/failed models\/nope\.bin: .* \(ERR_NOT_FOUND\)/);
      expect(r.stdout).toMatch(/batch: 2 of 3 loaded .*, 1 failed/);
    },
  );
});
