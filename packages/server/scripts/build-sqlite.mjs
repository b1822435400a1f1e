// Builds better-sqlite3's addon with node-gyp against the headers next to the running node binary
// (its own install script would download a prebuilt binary or the headers, which an offline
// machine cannot). The result goes to build/sqlite/abi-<N>/better_sqlite3.node, one per Node ABI,
// and is reused while it exists. Usage: node scripts/build-sqlite.mjs
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dest = join(
  root,
  'build',
  'sqlite',
  `abi-${process.versions.modules}`,
  'better_sqlite3.node',
);
if (existsSync(dest)) process.exit(0);

const nodedir = dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  console.error(
    `build-sqlite: Node headers not found under ${join(nodedir, 'include', 'node')}; install the ` +
      `development headers of ${process.execPath} (they come with the official builds).`,
  );
  process.exit(1);
}
const require = createRequire(join(root, 'package.json'));
const pkg = dirname(require.resolve('better-sqlite3/package.json'));
const gyp = join(root, 'node_modules', '.bin', 'node-gyp');
const started = Date.now();
console.log(
  `build-sqlite: compiling SQLite for Node ABI ${process.versions.modules} (about a minute, once)`,
);
// node-gyp lets npm_config_nodedir (which pnpm exports to scripts from npm's config, here /usr:
// Node 20's headers) override --nodedir: set it to the same, or another Node's build gets them.
const env = { ...process.env, npm_config_nodedir: nodedir };
const r = spawnSync(gyp, ['rebuild', '--release', `--nodedir=${nodedir}`, '--jobs=max'], {
  cwd: pkg,
  env,
  stdio: ['ignore', 'pipe', 'pipe'],
  maxBuffer: 64 * 1024 * 1024,
});
if (r.error) throw r.error;
if (r.status !== 0) {
  // Quiet when it works (compiler warnings of SQLite are not ours); everything when it fails.
  process.stderr.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  console.error(`build-sqlite: node-gyp failed in ${pkg} (status ${r.status})`);
  process.exit(r.status ?? 1);
}
mkdirSync(dirname(dest), { recursive: true });
// Copy then rename: a concurrent build or a crash never leaves a half-written addon at `dest`.
copyFileSync(join(pkg, 'build', 'Release', 'better_sqlite3.node'), `${dest}.tmp`);
try {
  // Loads only if it was built for this Node's ABI: never file a wrong build under abi-<N>.
  process.dlopen({ exports: {} }, `${dest}.tmp`);
} catch (e) {
  rmSync(`${dest}.tmp`, { force: true });
  console.error(`build-sqlite: the build does not load in ${process.execPath}: ${e.message}`);
  process.exit(1);
}
renameSync(`${dest}.tmp`, dest);
console.log(`build-sqlite: ${dest} (${Math.round((Date.now() - started) / 1000)} s)`);
