#!/usr/bin/env node
// The whole test suite, as the README's one command (`npm test`, or `pnpm test`) runs it:
// install, build, then every stage below; each vitest run writes a JSON report that is summed
// into the final line `N passed, N failed`. Non-vitest checks (lint, typecheck) count as one
// test each. Exit status is non-zero when anything failed.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { installAndBuild, pnpmCommand, root, run } from './bootstrap.mjs';
import { ensureNode24 } from './node24.mjs';
import { ensureValgrind } from './valgrind.mjs';

const reportDir = mkdtempSync(join(tmpdir(), 'sluice-reports-'));
const only = process.argv.slice(2); // optional stage names to run, e.g. `pnpm test native node`

const pnpm = pnpmCommand();
const checks = []; // { name, ok } for stages that are not vitest runs
const stages = [];

function stage(name, fn) {
  if (only.length === 0 || only.includes(name)) stages.push({ name, fn });
}

function vitestStage(name, cmd, args, env) {
  const before = new Set(readdirSync(reportDir));
  const ok = run(cmd, args, { ...env, SLUICE_REPORT_DIR: reportDir });
  const failures = readdirSync(reportDir)
    .filter((f) => !before.has(f))
    .map((f) => JSON.parse(readFileSync(join(reportDir, f), 'utf8')).numFailedTests ?? 0)
    .reduce((a, b) => a + b, 0);
  // A run that failed without a failing test in its reports (a crash, a build error, a
  // sanitizer abort) still counts as one failure.
  if (!ok && failures === 0) checks.push({ name, ok: false });
}

if (!installAndBuild(pnpm)) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

stage('lint', () => checks.push({ name: 'lint', ok: run(pnpm, ['run', 'lint']) }));
stage('typecheck', () => checks.push({ name: 'typecheck', ok: run(pnpm, ['run', 'typecheck']) }));
// Native backend forced: a machine where the addon does not load fails here instead of
// silently testing the node:crypto fallback twice.
stage('native', () =>
  vitestStage('native', pnpm, ['exec', 'turbo', 'run', 'test', '--continue'], {
    SLUICE_BACKEND: 'native',
  }),
);
stage('node', () =>
  vitestStage(
    'node',
    pnpm,
    ['exec', 'turbo', 'run', 'test', '--continue', '--filter=!@sluice/native'],
    {
      SLUICE_BACKEND: 'node',
      // The big-part ranges (API route and S3) over node:http and the SDK here, over the socket
      // receiver in the native stage.
      SLUICE_HTTP_RECEIVE: 'node',
    },
  ),
);
// The server suites once more with every test server on PostgreSQL and its parts on S3 (the
// other store backend; tests that look into the embedded backend's files skip themselves).
stage('server-pg', () =>
  vitestStage('server-pg', pnpm, ['--filter', '@sluice/server', 'exec', 'vitest', 'run'], {
    SLUICE_BACKEND: 'node',
    SLUICE_TEST_STORE: 'postgres',
  }),
);
// The packed CLI (scripts/pack.mjs) installed with `npm i -g` into a temp prefix and run there.
stage('install', () =>
  vitestStage('install', pnpm, ['--filter', '@sluice/install-test', 'run', 'test:install'], {}),
);
stage('sanitize', () =>
  vitestStage('sanitize', 'bash', [join(root, 'native/scripts/test-sanitize.sh')], {}),
);
// Memcheck over a file round trip through the addon: no definite leak, no memory error. Where
// valgrind cannot be installed (not root, no apt-get) it is skipped, except in CI.
stage('valgrind', () => {
  const installed = ensureValgrind();
  if (installed !== true) {
    console.log(`valgrind: skipped (${installed.reason})`);
    if (process.env.CI === 'true') checks.push({ name: 'valgrind', ok: false });
    return;
  }
  checks.push({
    name: 'valgrind',
    ok: run(process.execPath, [join(root, 'scripts/valgrind.mjs')]),
  });
});

// The whole suite once more on Node 24, once and not per crypto backend, to keep the run within
// its time (the native backend's suites still check it against node:crypto): its node from the npm registry (scripts/node24.mjs) first on PATH, the
// addon and SQLite built for its ABI beside the Node 20 builds (those build tasks are not cached,
// since turbo does not hash the Node version), then every package's tests and the install test.
stage('node24', () => {
  const bin = ensureNode24();
  if (typeof bin !== 'string') {
    console.log(`node24: skipped (${bin.reason})`);
    if (process.env.CI === 'true') checks.push({ name: 'node24', ok: false });
    return;
  }
  const env = { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };
  const built = run(pnpm, ['run', 'build', '--output-logs=errors-only'], env);
  checks.push({ name: 'node24 build', ok: built });
  if (!built) return;
  vitestStage('node24', pnpm, ['exec', 'turbo', 'run', 'test', '--continue'], {
    ...env,
    SLUICE_BACKEND: 'native',
  });
  vitestStage(
    'node24 install',
    pnpm,
    ['--filter', '@sluice/install-test', 'run', 'test:install'],
    env,
  );
});

// The S3 suites run against a real Ceph RGW: an existing store named by SLUICE_TEST_S3_ENDPOINT,
// else a throwaway single-node cluster started here (root or sudo with apt-get) and stopped at the
// end. Where neither is possible the S3 tests skip, saying so; with CI=true they never skip.
const needsS3 = stages.some((s) => ['native', 'node', 'server-pg', 'node24'].includes(s.name));
let ceph;
if (needsS3 && !process.env.SLUICE_TEST_S3_ENDPOINT) ceph = await startTestCeph();
// The PostgreSQL suites run against a real server: SLUICE_TEST_DATABASE_URL when set, else a
// throwaway cluster started here (scripts/postgres; installs postgresql-15 as root or with sudo)
// and removed at the end. Where neither is possible they skip, saying so; with CI=true they fail.
const needsPostgres = stages.some((s) =>
  ['native', 'node', 'server-pg', 'node24'].includes(s.name),
);
let postgres;
if (needsPostgres && !process.env.SLUICE_TEST_DATABASE_URL) postgres = await startTestPostgres();
try {
  for (const s of stages) {
    console.log(`\n=== sluice test stage: ${s.name} ===`);
    const started = Date.now();
    s.fn();
    console.log(`=== ${s.name}: ${Math.round((Date.now() - started) / 1000)} s ===`);
  }
} finally {
  await postgres?.stop();
  await ceph?.stop();
}

async function startTestPostgres() {
  const { ensurePostgresInstalled, startPostgres, testEnv } = await import(
    './postgres/postgres.mjs'
  );
  const installed = await ensurePostgresInstalled();
  if (installed !== true) {
    console.log(
      `PostgreSQL tests: skipped, no PostgreSQL here (${installed.reason}); set SLUICE_TEST_DATABASE_URL to use an existing server, or run as root where apt-get works`,
    );
    if (process.env.CI === 'true') checks.push({ name: 'postgres', ok: false });
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  try {
    const started = Date.now();
    const pg = await startPostgres({ dir });
    console.log(`PostgreSQL tests: ${pg.url} (started in ${Date.now() - started} ms, fsync off)`);
    Object.assign(process.env, testEnv(pg));
    for (const sig of ['SIGINT', 'SIGTERM']) {
      // ceph's handler, when there is one, exits once its slower stop is done
      process.once(sig, () => {
        pg.stop().finally(() => ceph || process.exit(130));
      });
    }
    return pg;
  } catch (e) {
    console.log(
      `PostgreSQL tests: the server did not start: ${e instanceof Error ? e.message : e}`,
    );
    checks.push({ name: 'postgres', ok: false });
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

async function startTestCeph() {
  const { ensureCephInstalled, startCeph } = await import('./ceph/ceph.mjs');
  const installed = await ensureCephInstalled();
  if (installed !== true) {
    const why =
      typeof installed === 'object' && installed?.reason ? installed.reason : 'unavailable';
    const line = `S3 tests: no Ceph here (${why}); set SLUICE_TEST_S3_ENDPOINT, SLUICE_TEST_S3_ACCESS_KEY and SLUICE_TEST_S3_SECRET_KEY to use an existing store, or run as root where apt-get works`;
    console.log(line);
    if (process.env.CI === 'true') checks.push({ name: 'ceph', ok: false });
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ceph-'));
  try {
    const started = Date.now();
    const c = await startCeph({ dir });
    console.log(`S3 tests: Ceph RGW at ${c.endpoint} (started in ${Date.now() - started} ms)`);
    Object.assign(process.env, {
      SLUICE_TEST_S3_ENDPOINT: c.endpoint,
      SLUICE_TEST_S3_REGION: c.region,
      SLUICE_TEST_S3_ACCESS_KEY: c.accessKeyId,
      SLUICE_TEST_S3_SECRET_KEY: c.secretAccessKey,
      ...(c.readAccessKeyId
        ? {
            SLUICE_TEST_S3_READ_ACCESS_KEY: c.readAccessKeyId,
            SLUICE_TEST_S3_READ_SECRET_KEY: c.readSecretAccessKey,
          }
        : {}),
      SLUICE_TEST_CEPH_DIR: dir,
    });
    const stop = async () => {
      await c.stop();
      rmSync(dir, { recursive: true, force: true });
    };
    for (const sig of ['SIGINT', 'SIGTERM']) {
      process.once(sig, () => {
        stop().finally(() => process.exit(130));
      });
    }
    return { stop };
  } catch (e) {
    console.log(`S3 tests: Ceph did not start: ${e instanceof Error ? e.message : e}`);
    checks.push({ name: 'ceph', ok: false });
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

let passed = 0;
let failed = 0;
for (const file of readdirSync(reportDir)) {
  const report = JSON.parse(readFileSync(join(reportDir, file), 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  // Suites that failed to load count as failures even though no test in them ran.
  for (const suite of report.testResults ?? []) {
    if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) failed += 1;
  }
  console.log(`report ${file}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
  // Name each failure with the first line of its message, so a CI log that shows only the
  // tail still says what broke.
  for (const suite of report.testResults ?? []) {
    for (const t of suite.assertionResults ?? []) {
      if (t.status !== 'failed') continue;
      const why = String(t.failureMessages?.[0] ?? '')
        .split('\n')[0]
        .slice(0, 300);
      console.log(`  FAILED ${relative(process.cwd(), suite.name)} > ${t.fullName}: ${why}`);
    }
    if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) {
      console.log(
        `  FAILED ${relative(process.cwd(), suite.name)}: ${String(suite.message ?? '').split('\n')[0]}`,
      );
    }
  }
}
for (const c of checks) {
  if (c.ok) passed += 1;
  else failed += 1;
  console.log(`check ${c.name}: ${c.ok ? 'ok' : 'FAILED'}`);
}
if (existsSync(reportDir)) rmSync(reportDir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
