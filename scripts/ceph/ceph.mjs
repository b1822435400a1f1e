#!/usr/bin/env node
// A throwaway single-node Ceph for tests and CI: one monitor, one bluestore OSD on a sparse file,
// radosgw (beast) on 127.0.0.1, no manager, no auth. Everything lives in one directory; the pids of
// the daemons it started are recorded there and `stop` kills only those.
//
//   node scripts/ceph/ceph.mjs install
//   node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph [--json] [--rgw-port N] [--mon-port N]
//   node scripts/ceph/ceph.mjs stop --dir /tmp/sluice-ceph
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const PACKAGES = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common'];
const BINARIES = [
  'ceph-mon',
  'ceph-osd',
  'radosgw',
  'radosgw-admin',
  'ceph-authtool',
  'monmaptool',
  'ceph',
];
const REGION = 'us-east-1';
const PIDS_FILE = 'pids.json';
const CONNECTION_FILE = 'connection.json';

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function missingBinaries() {
  return BINARIES.filter((b) => which(b) === null);
}

/**
 * Installs the Debian packages when a binary is missing. Resolves `true` when Ceph is usable,
 * `{ok: false, reason}` when it cannot be installed here (no apt-get, not root and no sudo, or the
 * install failed).
 */
export async function ensureCephInstalled() {
  if (missingBinaries().length === 0) return true;
  if (which('apt-get') === null) {
    return { ok: false, reason: `no apt-get to install ${PACKAGES.join(' ')}` };
  }
  const root = process.getuid?.() === 0;
  const sudo = !root && which('sudo') !== null && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!root && !sudo) {
    return {
      ok: false,
      reason: `not root and no password-less sudo to install ${PACKAGES.join(' ')}`,
    };
  }
  const args = ['apt-get', 'install', '-y', '--no-install-recommends', ...PACKAGES];
  const cmd = root ? args : ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive', ...args];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync(cmd[0], cmd.slice(1), { env, encoding: 'utf8' });
  if (r.status !== 0 && /Unable to locate package|no installation candidate/i.test(r.stderr)) {
    const update = root ? ['apt-get', 'update'] : ['sudo', '-n', 'apt-get', 'update'];
    spawnSync(update[0], update.slice(1), { env, encoding: 'utf8' });
    r = spawnSync(cmd[0], cmd.slice(1), { env, encoding: 'utf8' });
  }
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
    return { ok: false, reason: `apt-get install ${PACKAGES.join(' ')} failed: ${tail}` };
  }
  const still = missingBinaries();
  if (still.length > 0)
    return { ok: false, reason: `still missing after install: ${still.join(' ')}` };
  return true;
}

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it). */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

function config({ dir, fsid, monPort, rgwPort }) {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw hangs on auth errors over a secure monitor connection even with auth off
ms mon client mode = crc
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
keyring = ${dir}/keyring
log to stderr = false
err to stderr = true
mon cluster log file = ${dir}/log/cluster.log
# one OSD, small pools: radosgw creates about 8 of them
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# cold start in about 2 s instead of 13 s
paxos propose interval = 0.1
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = ${dir}/mon

[osd]
osd data = ${dir}/osd
osd objectstore = bluestore
bluestore block path = ${dir}/osd-block
bluestore block create = true
bluestore block size = 34359738368
bluestore block db create = false
bluestore block wal create = false
osd memory target = 536870912
bluestore cache autotune = false
bluestore cache size = 67108864
osd max object size = 134217728

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw thread pool size = 64
rgw data = ${dir}/rgw
rgw dns name = 127.0.0.1
rgw enable usage log = false
# reclaim deleted objects' space within a minute, not after the default two hours
rgw gc obj min wait = 30
rgw gc processor period = 30
`;
}

function readJson(path, fallback) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return fallback;
  }
}

function writeJsonAtomic(path, value) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

function recordPid(dir, name, pid) {
  const pids = readJson(join(dir, PIDS_FILE), {});
  pids[name] = pid;
  writeJsonAtomic(join(dir, PIDS_FILE), pids);
}

/** True when `pid` is alive and is one of this directory's daemons (not a reused pid). */
function ownsPid(dir, pid) {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(join(dir, 'ceph.conf'));
  } catch {
    return false;
  }
}

async function run(dir, cmd, args, timeoutMs = 60_000) {
  try {
    const { stdout } = await execFileAsync(cmd, args, {
      cwd: dir,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const detail = `${e.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed: ${detail || e.message}`);
  }
}

function spawnDaemon(dir, name, cmd, args) {
  const out = openSync(join(dir, 'log', `${name}.out`), 'a');
  const child = spawn(cmd, args, { cwd: dir, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  recordPid(dir, name, child.pid);
  return child.pid;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs, dir, logName, pid) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (pid !== undefined && !isAlive(pid)) {
      last = new Error('the daemon exited');
      break;
    }
    try {
      if (await fn()) return;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  let tail = '';
  if (logName) {
    try {
      tail = readFileSync(join(dir, 'log', logName), 'utf8')
        .trim()
        .split('\n')
        .slice(-10)
        .join('\n');
    } catch {}
  }
  throw new Error(
    `gave up after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}${tail ? `\n${tail}` : ''}`,
  );
}

async function rgwAnswers(endpoint) {
  try {
    const res = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie (a daemon this process spawned stays a zombie until it exits). */
function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function killAndWait(dir, name, pid) {
  if (pid && ownsPid(dir, pid)) await terminate(dir, pid);
  const pids = readJson(join(dir, PIDS_FILE), {});
  if (name in pids && pids[name] === pid) {
    delete pids[name];
    writeJsonAtomic(join(dir, PIDS_FILE), pids);
  }
}

async function terminate(dir, pid) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 10_000;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid) && ownsPid(dir, pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    while (isAlive(pid)) await sleep(20);
  }
}

const key = (n) =>
  randomBytes(n)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, n);

/**
 * Creates (or reuses, when `dir` already holds a stopped cluster) a single-node Ceph with radosgw
 * and two key pairs: a read-write user and a read-only subuser of it ("downloader"), which reads
 * everything the first one writes. Resolves once radosgw answers HTTP.
 */
export async function startCeph({ dir, rgwPort, monPort } = {}) {
  if (!dir) throw new Error('startCeph: dir is required');
  dir = resolve(dir);
  const installed = await ensureCephInstalled();
  if (installed !== true) throw new Error(`Ceph is not available: ${installed.reason}`);
  const conf = join(dir, 'ceph.conf');
  let conn = readJson(join(dir, CONNECTION_FILE), null);
  const running = readJson(join(dir, PIDS_FILE), {});
  const alive = ['mon', 'osd', 'rgw'].filter((name) => ownsPid(dir, running[name]));
  if (conn?.initialized && alive.length === 3 && (await rgwAnswers(conn.endpoint))) {
    // already up: hand out the running cluster (so `start` can be repeated)
    return handle(dir, conn, () => startRgwDaemon(dir, conf, conn.endpoint));
  }
  if (alive.length > 0) await stopCeph(dir);
  const fresh = conn === null;
  if (fresh) {
    // never wipe a directory that is not (the remains of) one of these clusters
    const entries = existsSync(dir) ? readdirSync(dir) : [];
    if (entries.length > 0 && !entries.includes('ceph.conf')) {
      throw new Error(`${dir} is not empty and holds no Ceph test cluster; use an empty directory`);
    }
    rmSync(dir, { recursive: true, force: true });
    for (const sub of ['mon', 'osd', 'rgw', 'run', 'log'])
      mkdirSync(join(dir, sub), { recursive: true });
    monPort ??= await freePort();
    rgwPort ??= await freePort();
    const fsid = randomUUID();
    writeFileSync(conf, config({ dir, fsid, monPort, rgwPort }));
    writeFileSync(join(dir, 'keyring'), '');
    // ceph-mon --mkfs wants a keyring even with auth off
    await run(dir, 'ceph-authtool', [
      '--create-keyring',
      join(dir, 'mon.keyring'),
      '--gen-key',
      '-n',
      'mon.',
      '--cap',
      'mon',
      'allow *',
    ]);
    await run(dir, 'monmaptool', [
      '--create',
      '--addv',
      'a',
      `[v2:127.0.0.1:${monPort}]`,
      '--fsid',
      fsid,
      join(dir, 'monmap'),
    ]);
    await run(dir, 'ceph-mon', [
      '-c',
      conf,
      '--mkfs',
      '-i',
      'a',
      '--monmap',
      join(dir, 'monmap'),
      '--keyring',
      join(dir, 'mon.keyring'),
    ]);
    conn = {
      endpoint: `http://127.0.0.1:${rgwPort}`,
      region: REGION,
      accessKeyId: `SLUICE${key(14).toUpperCase()}`,
      secretAccessKey: key(40),
      readAccessKeyId: `SLUICER${key(13).toUpperCase()}`,
      readSecretAccessKey: key(40),
      dir,
      fsid,
      monPort,
      rgwPort,
      initialized: false,
    };
  }
  try {
    return await boot(dir, conf, conn, fresh);
  } catch (e) {
    await stopCeph(dir);
    throw e;
  }
}

async function boot(dir, conf, conn, fresh) {
  const ceph = (...args) =>
    run(dir, 'ceph', ['-c', conf, '--connect-timeout', '20', ...args], 30_000);
  const mon = spawnDaemon(dir, 'mon', 'ceph-mon', ['-f', '-c', conf, '-i', 'a']);
  await waitFor(
    'the monitor',
    async () => (await ceph('mon', 'stat')) !== undefined,
    30_000,
    dir,
    'mon.a.log',
    mon,
  );

  if (fresh) {
    const osdUuid = randomUUID();
    const id = (await ceph('osd', 'new', osdUuid)).trim();
    if (id !== '0') throw new Error(`expected OSD id 0, got ${id}`);
    await run(dir, 'ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], 120_000);
  }
  const osd = spawnDaemon(dir, 'osd', 'ceph-osd', ['-f', '-c', conf, '-i', '0']);
  await waitFor(
    'the OSD to be up',
    async () => JSON.parse(await ceph('osd', 'stat', '--format', 'json')).num_up_osds >= 1,
    60_000,
    dir,
    'osd.0.log',
    osd,
  );

  const startRgw = () => startRgwDaemon(dir, conf, conn.endpoint);
  await startRgw();

  if (!conn.initialized) {
    const admin = (...args) =>
      run(dir, 'radosgw-admin', ['-c', conf, '-n', 'client.rgw', ...args], 60_000);
    await admin(
      'user',
      'create',
      '--uid',
      'sluice',
      '--display-name',
      'sluice tests',
      '--access-key',
      conn.accessKeyId,
      '--secret-key',
      conn.secretAccessKey,
    );
    // The downloader: a read-only subuser with its own S3 keys, so it reads the main user's buckets.
    await admin(
      'subuser',
      'create',
      '--uid',
      'sluice',
      '--subuser',
      'sluice:reader',
      '--access',
      'read',
      '--key-type',
      's3',
      '--access-key',
      conn.readAccessKeyId,
      '--secret-key',
      conn.readSecretAccessKey,
    );
    conn.initialized = true;
    writeJsonAtomic(join(dir, CONNECTION_FILE), conn);
  }
  return handle(dir, conn, startRgw);
}

async function startRgwDaemon(dir, conf, endpoint) {
  const rgw = spawnDaemon(dir, 'rgw', 'radosgw', ['-f', '-c', conf, '-n', 'client.rgw']);
  await waitFor(
    'radosgw to answer HTTP',
    () => rgwAnswers(endpoint),
    60_000,
    dir,
    'client.rgw.log',
    rgw,
  );
}

function handle(dir, conn, startRgw) {
  const pids = () => readJson(join(dir, PIDS_FILE), {});
  const stopRgw = async () => {
    await killAndWait(dir, 'rgw', pids().rgw);
  };
  return {
    endpoint: conn.endpoint,
    region: conn.region,
    accessKeyId: conn.accessKeyId,
    secretAccessKey: conn.secretAccessKey,
    readAccessKeyId: conn.readAccessKeyId,
    readSecretAccessKey: conn.readSecretAccessKey,
    dir,
    get pids() {
      return pids();
    },
    stop: () => stopCeph(dir),
    stopRgw,
    startRgw,
    restartRgw: async () => {
      await stopRgw();
      await startRgw();
    },
  };
}

/** Kills the daemons recorded in `dir` (only those, by pid), radosgw first. The data stays. */
export async function stopCeph(dir) {
  dir = resolve(dir);
  const pids = readJson(join(dir, PIDS_FILE), {});
  for (const name of ['rgw', 'osd', 'mon']) await killAndWait(dir, name, pids[name]);
  for (const [name, pid] of Object.entries(readJson(join(dir, PIDS_FILE), {}))) {
    await killAndWait(dir, name, pid);
  }
}

/** The test environment variables for a started cluster. */
export function testEnv(c) {
  return {
    SLUICE_TEST_S3_ENDPOINT: c.endpoint,
    SLUICE_TEST_S3_REGION: c.region,
    SLUICE_TEST_S3_ACCESS_KEY: c.accessKeyId,
    SLUICE_TEST_S3_SECRET_KEY: c.secretAccessKey,
    SLUICE_TEST_S3_READ_ACCESS_KEY: c.readAccessKeyId,
    SLUICE_TEST_S3_READ_SECRET_KEY: c.readSecretAccessKey,
    SLUICE_TEST_CEPH_DIR: c.dir,
  };
}

async function main(argv) {
  const [command, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--json') opts.json = true;
    else if (a === '--dir') opts.dir = rest[++i];
    else if (a === '--rgw-port') opts.rgwPort = Number(rest[++i]);
    else if (a === '--mon-port') opts.monPort = Number(rest[++i]);
    else return usage(`unknown option ${a}`);
  }
  if (command === 'install') {
    const r = await ensureCephInstalled();
    if (r !== true) {
      console.error(`ceph: ${r.reason}`);
      return 1;
    }
    console.error('ceph: installed');
    return 0;
  }
  if (command !== 'start' && command !== 'stop')
    return usage(command ? `unknown command ${command}` : 'no command');
  if (!opts.dir) return usage('--dir is required');
  if (command === 'stop') {
    await stopCeph(opts.dir);
    return 0;
  }
  const started = Date.now();
  const c = await startCeph(opts);
  const env = testEnv(c);
  if (opts.json) console.log(JSON.stringify({ ...env, pids: c.pids }));
  else for (const [k, v] of Object.entries(env)) console.log(`export ${k}=${shellQuote(v)}`);
  console.error(
    `ceph: radosgw on ${c.endpoint} (${Date.now() - started} ms); stop with: node scripts/ceph/ceph.mjs stop --dir ${c.dir}`,
  );
  return 0;
}

function shellQuote(s) {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${String(s).replaceAll("'", "'\\''")}'`;
}

function usage(problem) {
  console.error(`ceph: ${problem}
usage: node scripts/ceph/ceph.mjs install
       node scripts/ceph/ceph.mjs start --dir DIR [--json] [--rgw-port N] [--mon-port N]
       node scripts/ceph/ceph.mjs stop --dir DIR`);
  return 2;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`ceph: ${e.message}`);
      process.exit(1);
    },
  );
}
