#!/usr/bin/env node
// valgrind memcheck over a file round trip through the native addon
// (native/scripts/valgrindRoundTrip.cjs: encrypt + decrypt of a few MiB, in memory and file to
// file, hashes, split/concat and the failure paths). Installs valgrind with apt-get where it can
// (root, or password-less sudo), like scripts/ceph/ceph.mjs does for Ceph. Definite leaks and
// memory errors fail the run; the only suppressions are node's own (native/scripts/valgrind.supp).
// Prints the definitely lost bytes in the addon's own code (must be 0) and the time taken.
//
// Usage: node scripts/valgrind.mjs [addon.node]   (default the Release build for this node,
// native/build/<platform>-<arch>-abi-<N>, i.e. after `pnpm build`; another build can be named, e.g. a Debug one for line numbers in the stacks)
// Exit status: 0 clean, 1 errors, leaks or a failed round trip, 2 valgrind not available.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const native = join(root, 'native');
/** libuv worker threads in the run; each may keep one OpenSSL error-queue block to the end. */
const THREADS = 2;

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** true when valgrind is (now) installed, else { ok: false, reason }. */
export function ensureValgrind() {
  if (which('valgrind') !== null) return true;
  if (which('apt-get') === null) return { ok: false, reason: 'no valgrind and no apt-get' };
  const isRoot = process.getuid?.() === 0;
  const sudo = !isRoot && which('sudo') !== null && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!isRoot && !sudo) {
    return { ok: false, reason: 'no valgrind, and not root nor password-less sudo to install it' };
  }
  const args = ['apt-get', 'install', '-y', '--no-install-recommends', 'valgrind'];
  const cmd = isRoot ? args : ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive', ...args];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync(cmd[0], cmd.slice(1), { env, encoding: 'utf8' });
  if (r.status !== 0 && /Unable to locate package|no installation candidate/i.test(r.stderr)) {
    const update = isRoot ? ['apt-get', 'update'] : ['sudo', '-n', 'apt-get', 'update'];
    spawnSync(update[0], update.slice(1), { env, encoding: 'utf8' });
    r = spawnSync(cmd[0], cmd.slice(1), { env, encoding: 'utf8' });
  }
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
    return { ok: false, reason: `apt-get install valgrind failed: ${tail}` };
  }
  return which('valgrind') !== null
    ? true
    : { ok: false, reason: 'valgrind missing after install' };
}

const count = (s) => Number(String(s ?? '0').replaceAll(',', ''));

/** Splits a memcheck log into its records (blocks of lines between blank `==pid==` lines). */
function records(log) {
  return log
    .split(/\n==\d+== ?\n/)
    .map((r) => r.replace(/^==\d+== ?/gm, '').trim())
    .filter(Boolean);
}

/** What the log says: leaks and errors in all, and those with a frame in the addon. */
export function summarize(log) {
  const definite = log.match(/definitely lost: ([\d,]+) bytes in ([\d,]+) blocks/);
  const suppressed = log.match(/suppressed: ([\d,]+) bytes in ([\d,]+) blocks/);
  const errors = log.match(/ERROR SUMMARY: ([\d,]+) errors/);
  const ours = { leakedBytes: 0, errors: [] };
  const leaks = [];
  const problems = [];
  for (const r of records(log)) {
    const leak = r.match(/^([\d,]+) (?:\([^)]*\) )?bytes in [\d,]+ blocks are definitely lost/);
    const inAddon = r.includes('sluice_native.node');
    if (leak) {
      leaks.push(r);
      if (inAddon) ours.leakedBytes += count(leak[1]);
    } else if (
      /^(Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap)/.test(
        r,
      )
    ) {
      problems.push(r);
      if (inAddon) ours.errors.push(r);
    }
  }
  return {
    definiteBytes: count(definite?.[1]),
    definiteBlocks: count(definite?.[2]),
    suppressedBlocks: count(suppressed?.[2]),
    errors: errors ? count(errors[1]) : null,
    ours,
    leaks,
    problems,
  };
}

/** The Release build for the running node (native/index.js decides where it goes). */
function nativeAbiDir() {
  return createRequire(import.meta.url)(join(native, 'index.js')).abiDir();
}

/** Runs the round trip under memcheck with the addon at `addon`; true when it is clean. */
export function runValgrind(addon = join(nativeAbiDir(), 'sluice_native.node')) {
  if (!existsSync(addon)) {
    console.error(`valgrind: ${addon} is missing; build it first (\`pnpm build\`)`);
    return false;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-valgrind-log-'));
  try {
    const log = join(dir, 'memcheck.log');
    const started = Date.now();
    const r = spawnSync(
      'valgrind',
      [
        '--tool=memcheck',
        '--leak-check=full',
        '--show-leak-kinds=definite',
        '--errors-for-leak-kinds=definite',
        '--error-exitcode=99',
        // V8 writes and rewrites machine code in anonymous memory.
        '--smc-check=all-non-file',
        '--num-callers=30',
        `--suppressions=${join(native, 'scripts', 'valgrind.supp')}`,
        `--log-file=${log}`,
        process.execPath,
        join(native, 'scripts', 'valgrindRoundTrip.cjs'),
      ],
      {
        stdio: 'inherit',
        env: { ...process.env, SLUICE_NATIVE_PATH: addon, UV_THREADPOOL_SIZE: String(THREADS) },
      },
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (r.error) {
      console.error(`valgrind: cannot run valgrind: ${r.error.message}`);
      return false;
    }
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    const s = summarize(text);
    console.log(
      `valgrind: definitely lost in sluice_native.node: ${s.ours.leakedBytes} bytes; ` +
        `in all: ${s.definiteBytes} bytes in ${s.definiteBlocks} blocks; ` +
        `memcheck errors: ${s.errors ?? 'unknown'} (${s.ours.errors.length} in the addon); ` +
        `OpenSSL per-thread blocks suppressed: ${s.suppressedBlocks} (at most ${THREADS}); ` +
        `${seconds} s, exit ${r.status ?? r.signal}`,
    );
    for (const rec of [...s.leaks, ...s.problems]) console.error(`\n${rec}`);
    const ok =
      r.status === 0 &&
      s.errors === 0 &&
      s.definiteBytes === 0 &&
      s.ours.leakedBytes === 0 &&
      s.suppressedBlocks <= THREADS;
    if (!ok && s.errors === null) console.error(`valgrind: no memcheck summary; log:\n${text}`);
    if (s.suppressedBlocks > THREADS) {
      console.error('valgrind: more OpenSSL error-queue blocks than threads: a leak per call?');
    }
    return ok;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const installed = ensureValgrind();
  if (installed !== true) {
    console.error(`valgrind: not available (${installed.reason})`);
    process.exit(2);
  }
  process.exit(runValgrind(process.argv[2]) ? 0 : 1);
}
