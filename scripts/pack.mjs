#!/usr/bin/env node
// Packs the `sluice` command into one tarball that `npm i -g ./sluice-cli-<version>.tgz` installs
// on a machine with only Node. Run after `pnpm build` (`pnpm pack:cli` does both).
//
// The workspace packages @sluice/cli needs (protocol, cdn, native, core, server) are not on any
// registry, so they travel inside the tarball as bundleDependencies, each packed by `npm pack`
// (its own `files`). Their third-party dependencies are lifted into the cli's own `dependencies`
// (exact versions; a version two packages disagree on stops the pack) and stripped from the
// bundled copies: npm treats whatever a bundled package depends on as part of the bundle, so left
// in place they would be expected inside the tarball instead of coming from the registry.
//
// Compiled parts are carried prebuilt for the machine that packs, one per Node ABI that has been
// built (native/build/<platform>-<arch>-abi-<N>, packages/server/build/sqlite/abi-<N>): the
// install compiles nothing and needs no compiler. The crypto addon is optional (node:crypto takes
// over elsewhere, and `sluice doctor` says which backend runs and why). better-sqlite3 is the one
// third-party package bundled: the server opens SQLite through the binding it built itself
// (`nativeBinding`), so of better-sqlite3 only lib/ is needed, and its install step (a download
// from GitHub, else a compile of SQLite with node-gyp) would only fail offline or without g++.
//
// Usage: node scripts/pack.mjs [--out DIR]   (default: the repository root). Prints the path.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './bootstrap.mjs';

/** Bundled third-party packages: name → the files of it that are shipped. */
const VENDORED = { 'better-sqlite3': ['lib', 'LICENSE', 'README.md', 'package.json'] };

/** Fields of a bundled package.json that only matter inside the workspace. */
const DEV_ONLY = ['devDependencies', 'scripts', 'private', 'gypfile'];

function fail(message) {
  console.error(`pack: ${message}`);
  process.exit(1);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Every workspace package, by name → its directory (from `pnpm ls --json`, all of the workspace). */
function workspacePackages() {
  const r = spawnSync('pnpm', ['ls', '-r', '--depth', '-1', '--json'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) fail(`pnpm ls failed: ${r.stderr}`);
  return new Map(JSON.parse(r.stdout).map((p) => [p.name, p.path]));
}

/** The workspace packages `name` needs at run time, itself first. */
function closure(name, workspace) {
  const seen = new Map();
  const visit = (n) => {
    if (seen.has(n)) return;
    const dir = workspace.get(n);
    const pkg = readJson(join(dir, 'package.json'));
    seen.set(n, { dir, pkg });
    for (const [dep, spec] of Object.entries(pkg.dependencies ?? {})) {
      if (spec.startsWith('workspace:')) visit(dep);
    }
  };
  visit(name);
  return seen;
}

/** Third-party runtime dependencies of every package in `members`, merged; conflicts stop the pack. */
function thirdParty(members) {
  const deps = {};
  for (const [name, { pkg }] of members) {
    for (const [dep, spec] of Object.entries(pkg.dependencies ?? {})) {
      if (spec.startsWith('workspace:')) continue;
      if (deps[dep] !== undefined && deps[dep].spec !== spec) {
        fail(`${dep} is ${deps[dep].spec} in ${deps[dep].from} but ${spec} in ${name}; align them`);
      }
      deps[dep] = { spec, from: name };
    }
  }
  return Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v.spec]));
}

/** `npm pack` of `dir` (its `files`), unpacked into `dest`. */
function npmPackInto(dir, dest, scratch) {
  const r = spawnSync('npm', ['pack', '--json', '--pack-destination', scratch], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (r.status !== 0) fail(`npm pack in ${dir} failed: ${r.stderr}`);
  const [{ filename }] = JSON.parse(r.stdout);
  mkdirSync(dest, { recursive: true });
  const t = spawnSync('tar', ['-xzf', join(scratch, filename), '-C', dest, '--strip-components=1']);
  if (t.status !== 0) fail(`cannot unpack ${filename}: ${t.stderr}`);
  rmSync(join(scratch, filename));
}

function strip(pkg) {
  const out = { ...pkg };
  for (const field of DEV_ONLY) delete out[field];
  delete out.dependencies;
  return out;
}

/** The prebuilt binaries a packed directory carries, for the summary line. */
function prebuilt(dir, sub) {
  const d = join(dir, ...sub);
  return existsSync(d) ? readdirSync(d).filter((f) => f.includes('abi-')) : [];
}

function vendor(name, stageModules, from) {
  const require = createRequire(join(from, 'package.json'));
  const src = dirname(require.resolve(`${name}/package.json`));
  const dest = join(stageModules, name);
  for (const f of VENDORED[name]) {
    if (existsSync(join(src, f))) cpSync(join(src, f), join(dest, f), { recursive: true });
  }
  const pkg = readJson(join(dest, 'package.json'));
  writeFileSync(join(dest, 'package.json'), `${JSON.stringify(strip(pkg), null, 2)}\n`);
  return pkg.version;
}

function stageCli(members, stage, scratch) {
  const [[cliName, cli], ...rest] = [...members];
  npmPackInto(cli.dir, stage, scratch);
  const modules = join(stage, 'node_modules');
  const dependencies = thirdParty(members);
  const bundled = [];
  for (const [name, { dir, pkg }] of rest) {
    const dest = join(modules, name);
    npmPackInto(dir, dest, scratch);
    writeFileSync(join(dest, 'package.json'), `${JSON.stringify(strip(pkg), null, 2)}\n`);
    dependencies[name] = pkg.version;
    bundled.push(name);
  }
  for (const name of Object.keys(VENDORED)) {
    const owner = rest.find(([, m]) => m.pkg.dependencies?.[name]);
    if (!owner) continue;
    const version = vendor(name, modules, owner[1].dir);
    if (version !== dependencies[name])
      fail(`${name}: installed ${version}, declared ${dependencies[name]}`);
    bundled.push(name);
  }
  const pkg = {
    ...strip(cli.pkg),
    dependencies: sortKeys(dependencies),
    bundleDependencies: bundled.sort(),
  };
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  return { cliName, version: cli.pkg.version, bundled };
}

function sortKeys(o) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

function main() {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const out = resolve(values.out ?? root);
  const workspace = workspacePackages();
  const members = closure('@sluice/cli', workspace);
  for (const [name, { dir, pkg }] of members) {
    const entry = pkg.exports?.['.']?.default ?? pkg.main;
    if (entry && !existsSync(join(dir, entry)))
      fail(`${name} is not built (${entry}); run \`pnpm build\``);
  }
  const native = members.get('@sluice/native');
  const server = members.get('@sluice/server');
  const addons = native ? prebuilt(native.dir, ['build']) : [];
  const sqlite = server ? prebuilt(server.dir, ['build', 'sqlite']) : [];
  if (server && sqlite.length === 0) fail('no SQLite build for any Node ABI; run `pnpm build`');

  const scratch = mkdtempSync(join(tmpdir(), 'sluice-pack-'));
  try {
    const stage = join(scratch, 'stage');
    const { version, bundled } = stageCli(members, stage, scratch);
    mkdirSync(out, { recursive: true });
    const r = spawnSync('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: stage,
      encoding: 'utf8',
    });
    if (r.status !== 0) fail(`npm pack of the staged cli failed: ${r.stderr}`);
    const [{ filename, size, entryCount }] = JSON.parse(r.stdout);
    console.error(
      `pack: @sluice/cli ${version} with ${bundled.join(', ')} bundled; prebuilt crypto addon: ` +
        `${addons.join(', ') || 'none (node:crypto)'}; SQLite: ${sqlite.join(', ')}; ` +
        `${entryCount} files, ${(size / 2 ** 20).toFixed(1)} MiB`,
    );
    console.log(join(out, filename));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main();
