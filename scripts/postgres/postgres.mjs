#!/usr/bin/env node
// A throwaway PostgreSQL for tests and benches: one cluster made by initdb in one directory
// (trust auth, superuser `sluice`), listening on a free 127.0.0.1 port and on a unix socket in that
// directory. fsync, synchronous_commit and full_page_writes are off: fast, and a crash loses the
// data, which is thrown away anyway. `stop` kills only this cluster's processes and removes the
// directory. As root the server runs as the `postgres` user (initdb and postgres refuse root).
//
//   node scripts/postgres/postgres.mjs install
//   node scripts/postgres/postgres.mjs start --dir /tmp/sluice-pg [--json] [--port N]
//   node scripts/postgres/postgres.mjs stop --dir /tmp/sluice-pg
import { execFile, spawn, spawnSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const PACKAGE = 'postgresql-15';
const VERSIONS_DIR = '/usr/lib/postgresql';
const SUPERUSER = 'sluice';
const MARKER = 'sluice-postgres.json';
const LOG = 'postgres.log';
const SOCKET_PATH_MAX = 107; // sun_path is 108 bytes with the terminating NUL

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The directory holding initdb and postgres: Debian's, 15 first, then the newest; else PATH. */
export function postgresBinDir() {
  const usable = (bin) => existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'postgres'));
  const versions = existsSync(VERSIONS_DIR) ? readdirSync(VERSIONS_DIR) : [];
  const ordered = versions
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => (a === '15' ? -1 : b === '15' ? 1 : Number(b) - Number(a)));
  for (const v of ordered) {
    if (usable(join(VERSIONS_DIR, v, 'bin'))) return join(VERSIONS_DIR, v, 'bin');
  }
  const initdb = which('initdb');
  return initdb && usable(resolve(initdb, '..')) ? resolve(initdb, '..') : null;
}

/**
 * Installs postgresql-15 with apt-get when no server binaries are found. Resolves `true` when
 * PostgreSQL is usable, `{ok: false, reason}` when it cannot be installed here (no apt-get, not
 * root and no password-less sudo, or the install failed).
 */
export async function ensurePostgresInstalled() {
  if (postgresBinDir() !== null) return true;
  if (which('apt-get') === null) return { ok: false, reason: `no apt-get to install ${PACKAGE}` };
  const root = process.getuid?.() === 0;
  const sudo = !root && which('sudo') !== null && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!root && !sudo) {
    return { ok: false, reason: `not root and no password-less sudo to install ${PACKAGE}` };
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (...args) => {
    const cmd = root
      ? ['apt-get', ...args]
      : ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
    return spawnSync(cmd[0], cmd.slice(1), { env, encoding: 'utf8' });
  };
  let r = apt('install', '-y', PACKAGE);
  if (r.status !== 0 && /Unable to locate package|no installation candidate/i.test(r.stderr)) {
    apt('update');
    r = apt('install', '-y', PACKAGE);
  }
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
    return { ok: false, reason: `apt-get install ${PACKAGE} failed: ${tail}` };
  }
  if (postgresBinDir() === null) {
    return { ok: false, reason: `no initdb/postgres found after installing ${PACKAGE}` };
  }
  return true;
}

/** As root, the uid/gid of `postgres` to run the server as; otherwise nothing (run as we are). */
function serverUser() {
  if (process.getuid?.() !== 0) return {};
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) {
    throw new Error('running as root, but there is no `postgres` user to run the server as');
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
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

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/** Alive and not a zombie (a server this process spawned stays a zombie until it is reaped). */
function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function procLink(pid, what) {
  try {
    return readlinkSync(`/proc/${pid}/${what}`).replace(/ \(deleted\)$/, '');
  } catch {
    return null;
  }
}

/**
 * The live postgres processes working in `dataDir`: the postmaster and its children all chdir
 * there, and those outlive a postmaster killed with SIGKILL. Matched by cwd and executable, so a
 * shell sitting in the directory is never one of them.
 */
function clusterProcesses(dataDir) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = procLink(entry, 'cwd');
    if (cwd !== dataDir && !cwd?.startsWith(`${dataDir}/`)) continue;
    if (!procLink(entry, 'exe')?.endsWith('/postgres')) continue;
    if (isAlive(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {}
}

/** postmaster.pid: pid, data dir, start time, port, socket dir, listen address, shm key, status. */
function postmasterStatus(dataDir) {
  try {
    const lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    return { pid: Number(lines[0]), port: Number(lines[3]), status: lines[7]?.trim() };
  } catch {
    return null;
  }
}

function dataDirOf(dir) {
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {}
  return join(real, 'data');
}

function logTail(dir, lines = 8) {
  try {
    return readFileSync(join(dir, LOG), 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Kills the cluster in `dir` (immediate shutdown, then SIGKILL for anything of it still alive) and
 * removes the directory. A missing directory is fine; one that holds no such cluster is refused.
 */
export async function stopPostgres(dir) {
  dir = resolve(dir);
  if (!existsSync(dir)) return;
  if (!existsSync(join(dir, MARKER))) {
    if (readdirSync(dir).length > 0) {
      throw new Error(`${dir} holds no sluice PostgreSQL cluster; not removing it`);
    }
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const dataDir = dataDirOf(dir);
  const postmaster = clusterProcesses(dataDir).find((pid) => isPostmaster(pid, dataDir));
  // SIGQUIT is the immediate shutdown: no checkpoint, the data is about to be deleted anyway
  if (postmaster !== undefined) signal(postmaster, 'SIGQUIT');
  const deadline = Date.now() + 5_000;
  while (postmaster !== undefined && isAlive(postmaster) && Date.now() < deadline) await sleep(10);
  // what is left: children of a postmaster that crashed or did not stop in time
  let left = clusterProcesses(dataDir);
  while (left.length > 0 && Date.now() < deadline + 5_000) {
    for (const pid of left) signal(pid, 'SIGKILL');
    await sleep(10);
    left = clusterProcesses(dataDir);
  }
  if (left.length > 0)
    throw new Error(`postgres processes ${left.join(' ')} in ${dir} did not die`);
  rmSync(dir, { recursive: true, force: true });
}

function isPostmaster(pid, dataDir) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir);
  } catch {
    return false;
  }
}

/** A fresh, empty, writable-by-the-server `dir` holding the marker; refuses somebody else's dir. */
function prepareDir(dir, user) {
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  if (entries.length > 0) {
    throw new Error(
      `${dir} is not empty and holds no PostgreSQL test cluster; use an empty directory`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, MARKER), `${JSON.stringify({ created: new Date().toISOString() })}\n`);
  if (user.uid === undefined) return;
  chownSync(dir, user.uid, user.gid);
  const probe = spawnSync('test', ['-w', dir, '-a', '-x', dir], { ...user });
  if (probe.status !== 0) {
    throw new Error(
      `the postgres user cannot reach ${dir} (a parent directory is closed to it); use a directory under /tmp`,
    );
  }
}

async function initdb(bin, dir, user) {
  const args = ['-D', dataDirOf(dir), '-A', 'trust', '-U', SUPERUSER, '-E', 'UTF8'];
  args.push('--locale=C', '--no-sync', '--no-instructions');
  try {
    await execFileAsync(join(bin, 'initdb'), args, { cwd: dir, timeout: 60_000, ...user });
  } catch (e) {
    const detail = `${e.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
    throw new Error(`initdb failed: ${detail || e.message}`);
  }
}

/** Starts postgres on `port` and resolves once it accepts connections; rejects if it exits. */
async function boot(bin, dir, port, user) {
  const dataDir = dataDirOf(dir);
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
  };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const out = openSync(join(dir, LOG), 'a');
  const child = spawn(join(bin, 'postgres'), args, {
    cwd: dir,
    detached: true,
    stdio: ['ignore', out, out],
    ...user,
  });
  closeSync(out);
  child.unref();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    // the status line reads "ready" once the postmaster accepts connections (what pg_ctl -w waits for)
    if (postmasterStatus(dataDir)?.status === 'ready') return child.pid;
    if (!isAlive(child.pid)) {
      const tail = logTail(dir);
      const busy = /could not bind|Address already in use|could not create any TCP\/IP sockets/;
      return { exited: true, portTaken: busy.test(tail), tail };
    }
    await sleep(10);
  }
  return { exited: false, tail: logTail(dir) };
}

function connection(dir, port, pid) {
  return {
    url: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`,
    port,
    dir,
    socketDir: dir,
    pid,
  };
}

function handle(conn) {
  return { ...conn, stop: () => stopPostgres(conn.dir) };
}

/**
 * Starts a throwaway cluster in `dir` and resolves once it accepts connections, with
 * `{url, port, dir, socketDir, pid, stop()}`. A running cluster in `dir` is handed out again; the
 * remains of a crashed one are cleared first. `stop()` kills it and removes `dir`.
 */
export async function startPostgres({ dir, port } = {}) {
  if (!dir) throw new Error('startPostgres: dir is required');
  dir = resolve(dir);
  const installed = await ensurePostgresInstalled();
  if (installed !== true) throw new Error(`PostgreSQL is not available: ${installed.reason}`);
  const bin = postgresBinDir();
  const user = serverUser();
  const marker = readJson(join(dir, MARKER));
  if (marker?.url) {
    const now = postmasterStatus(dataDirOf(dir));
    if (
      now?.status === 'ready' &&
      now.pid === marker.pid &&
      isPostmaster(now.pid, dataDirOf(dir))
    ) {
      return handle(marker);
    }
  }
  if (existsSync(join(dir, MARKER))) await stopPostgres(dir); // a crashed or half-made cluster
  const socket = join(dir, `.s.PGSQL.${port ?? 65535}`);
  if (Buffer.byteLength(socket) > SOCKET_PATH_MAX) {
    throw new Error(`${dir} is too long for a unix socket path (${socket}); use a shorter one`);
  }
  try {
    prepareDir(dir, user);
    await initdb(bin, dir, user);
    for (let attempt = 1; ; attempt++) {
      const tryPort = port ?? (await freePort());
      const r = await boot(bin, dir, tryPort, user);
      if (typeof r === 'number') {
        const conn = connection(dir, tryPort, r);
        writeFileSync(join(dir, MARKER), `${JSON.stringify(conn, null, 2)}\n`);
        return handle(conn);
      }
      // another process took the free port between the probe and postgres binding it
      if (r.portTaken && port === undefined && attempt < 5) continue;
      throw new Error(`postgres did not start${r.exited ? '' : ' within 30 s'}:\n${r.tail}`);
    }
  } catch (e) {
    if (existsSync(join(dir, MARKER))) await stopPostgres(dir);
    throw e;
  }
}

/** The test environment variables for a started cluster. */
export function testEnv(c) {
  return { SLUICE_TEST_DATABASE_URL: c.url, SLUICE_TEST_POSTGRES_DIR: c.dir };
}

async function main(argv) {
  const [command, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--json') opts.json = true;
    else if (a === '--dir') opts.dir = rest[++i];
    else if (a === '--port') {
      opts.port = Number(rest[++i]);
      if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535)
        return usage(`--port needs a port number, not ${rest[i]}`);
    } else return usage(`unknown option ${a}`);
  }
  if (command === 'install') {
    const r = await ensurePostgresInstalled();
    if (r !== true) {
      console.error(`postgres: ${r.reason}`);
      return 1;
    }
    console.error(`postgres: installed (${postgresBinDir()})`);
    return 0;
  }
  if (command !== 'start' && command !== 'stop')
    return usage(command ? `unknown command ${command}` : 'no command');
  if (!opts.dir) return usage('--dir is required');
  if (command === 'stop') {
    await stopPostgres(opts.dir);
    return 0;
  }
  const started = Date.now();
  const c = await startPostgres(opts);
  const env = testEnv(c);
  if (opts.json) console.log(JSON.stringify({ ...env, pid: c.pid }));
  else for (const [k, v] of Object.entries(env)) console.log(`export ${k}=${shellQuote(v)}`);
  console.error(
    `postgres: ${c.url} (${Date.now() - started} ms, fsync off); stop with: node scripts/postgres/postgres.mjs stop --dir ${c.dir}`,
  );
  return 0;
}

function shellQuote(s) {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${String(s).replaceAll("'", "'\\''")}'`;
}

function usage(problem) {
  console.error(`postgres: ${problem}
usage: node scripts/postgres/postgres.mjs install
       node scripts/postgres/postgres.mjs start --dir DIR [--json] [--port N]
       node scripts/postgres/postgres.mjs stop --dir DIR`);
  return 2;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`postgres: ${e.message}`);
      process.exit(1);
    },
  );
}
