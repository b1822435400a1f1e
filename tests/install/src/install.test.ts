// The README's install, done the way a user does it: `scripts/pack.mjs` (what `pnpm pack:cli`
// runs) makes the tarball, `npm i -g --prefix TMP` installs it outside the repository (third-party
// packages from the npm cache or the registry), and TMP/bin/sluice runs on the node running this
// test, so the Node 24 pass of `pnpm test` checks the Node 24 prebuilts.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cliVersion = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8'))
  .version as string;
const work = mkdtempSync(join(tmpdir(), 'sluice-install-'));
const prefix = join(work, 'prefix');
/** The running node first on PATH: npm and the installed `#!/usr/bin/env node` script use it. */
const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
let tarball = '';

/** The installed command, from a directory outside the repository, with a clean environment. */
function sluice(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')),
  );
  return spawnSync(join(prefix, 'bin', 'sluice'), args, {
    cwd: work,
    encoding: 'utf8',
    env: { ...clean, PATH, SLUICE_CONFIG_DIR: join(work, 'config'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

beforeAll(() => {
  tarball = execFileSync(process.execPath, [join(root, 'scripts/pack.mjs'), '--out', work], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, PATH },
  }).trim();
  execFileSync(
    'npm',
    ['i', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    { cwd: work, env: { ...process.env, PATH }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed sluice installed with npm i -g', () => {
  it('is one tarball named after the cli, with the workspace packages inside it', () => {
    expect(tarball).toBe(join(work, `sluice-cli-${cliVersion}.tgz`));
    const pkg = JSON.parse(
      execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
    );
    expect(pkg.bin).toEqual({ sluice: './bin/sluice.js' });
    expect(pkg.bundleDependencies).toEqual(
      expect.arrayContaining(['@sluice/core', '@sluice/native', '@sluice/server']),
    );
    expect(pkg.devDependencies).toBeUndefined();
    expect(JSON.stringify(pkg.dependencies)).not.toContain('workspace:');
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    // built output only: no TypeScript sources, no tests, no C++ to compile at install
    expect(files.filter((f) => /\.(test\.js|cc|h)$|\/src\//.test(f))).toEqual([]);
  });

  it('sluice doctor: the native backend, from the prebuilt addon for this Node', () => {
    const r = sluice(['doctor', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.node).toBe(process.version);
    expect(report.backend).toBe('native');
    const abi = `${process.platform}-${process.arch}-abi-${process.versions.modules}`;
    expect(report.reason).toContain(join(prefix, 'lib/node_modules/@sluice/cli/node_modules'));
    expect(report.reason).toContain(`${abi}/sluice_native.node`);
  });

  it('sluice doctor says node:crypto when the addon is turned off', () => {
    const r = sluice(['doctor'], { SLUICE_BACKEND: 'node' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^crypto backend\s+node \(SLUICE_BACKEND=node/m);
  });

  it('sluice --help lists the commands', () => {
    const r = sluice(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: sluice .*COMMAND/m);
    for (const command of ['pull', 'push', 'serve', 'doctor']) {
      expect(r.stdout).toMatch(new RegExp(`^ {2}${command} `, 'm'));
    }
  });

  it('sluice --version prints the packed version', () => {
    const r = sluice(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(cliVersion);
  });

  it('sluice serve creates its SQLite database through the bundled binding', () => {
    const data = join(work, 'data');
    const r = sluice(
      ['serve', '--data', data, '--init-admin', 'admin@example.com', '--init-only'],
      {
        SLUICE_ADMIN_PASSWORD: 'correct horse battery staple',
      },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`created ApiAdmin admin@example.com in ${data}`);
    const again = sluice(
      ['serve', '--data', data, '--init-admin', 'admin@example.com', '--init-only'],
      {
        SLUICE_ADMIN_PASSWORD: 'correct horse battery staple',
      },
    );
    // the second run reads the same database file and finds the admin there
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/an ApiAdmin already exists in this store \(ERR_CONFLICT\)/);
  });
});
