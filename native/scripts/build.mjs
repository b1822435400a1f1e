// Builds the addon with node-gyp against the headers that sit next to the running node binary,
// so no header download is ever attempted. Run it with the node to build for (`node24
// scripts/build.mjs` builds for Node 24 beside the Node 20 build). The Release build is copied to
// build/<platform>-<arch>-abi-<N>/ (abiDir in index.js), one per Node ABI, and skipped while that
// copy is newer than every source: turbo does not hash the Node version, so this task is not
// cached and decides for itself. Usage: node scripts/build.mjs [--debug [--sanitize]]
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = new Set(process.argv.slice(2));
const debug = args.has('--debug');
const sanitize = args.has('--sanitize');
if (sanitize && !debug) {
  console.error('build: --sanitize only applies to the Debug build; add --debug');
  process.exit(2);
}

const { abiDir } = createRequire(import.meta.url)('../index.js');
const dest = join(abiDir(), 'sluice_native.node');
if (!debug && upToDate(dest)) {
  console.log(`build: ${dest} is up to date`);
  process.exit(0);
}

const nodedir = dirname(dirname(process.execPath));
const header = join(nodedir, 'include', 'node', 'node_api.h');
if (!existsSync(header)) {
  console.error(
    `build: Node headers not found at ${header}.\n` +
      `  The addon is built against the headers installed with ${process.execPath}.\n` +
      '  Install the Node development headers for this node (e.g. the nodejs package that ships\n' +
      '  include/node, or an official tarball) or run with a node that has them.',
  );
  process.exit(1);
}

const gyp = join(root, 'node_modules', '.bin', 'node-gyp');
if (!existsSync(gyp)) {
  console.error(`build: ${gyp} is missing; run \`pnpm install\` at the repository root first.`);
  process.exit(1);
}

function run(argv) {
  // node-gyp lets npm_config_nodedir (pnpm exports npm's config to scripts) override --nodedir.
  const env = { ...process.env, npm_config_nodedir: nodedir };
  const r = spawnSync(gyp, argv, { cwd: root, stdio: 'inherit', env });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// configure + build (not rebuild): rebuild would wipe build/ and with it the other configuration.
const common = [`--nodedir=${nodedir}`];
run([
  'configure',
  ...common,
  ...(debug ? ['--debug'] : []),
  '--',
  `-Dsanitize=${sanitize ? 1 : 0}`,
]);
run(['build', ...common, ...(debug ? ['--debug'] : []), '--jobs=max']);
let out = join(root, 'build', debug ? 'Debug' : 'Release', 'sluice_native.node');
if (!debug) {
  // Copy then rename: a concurrent build or a crash never leaves a half-written addon at `dest`.
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(out, `${dest}.tmp`);
  renameSync(`${dest}.tmp`, dest);
  out = dest;
} else if (sanitize) {
  // A sanitizer build aborts any process that did not preload libasan, so it must never sit
  // where the loader looks by default (build/Debug): it is reached only via SLUICE_NATIVE_PATH.
  const dest = join(root, 'build', 'Sanitize', 'sluice_native.node');
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(out, dest);
  out = dest;
}
console.log(`build: ${out}`);

/** True when `file` exists and is newer than binding.gyp, this script and every file in src/. */
function upToDate(file) {
  if (!existsSync(file)) return false;
  const built = statSync(file).mtimeMs;
  const src = join(root, 'src');
  const inputs = [
    join(root, 'binding.gyp'),
    fileURLToPath(import.meta.url),
    ...readdirSync(src).map((f) => join(src, f)),
  ];
  return inputs.every((f) => statSync(f).mtimeMs < built);
}
