import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hardwareHash, loadBigSmallResource, sha256File } from '@sluice/core';
import { type Command, EXIT, UsageError } from '../command.js';
import { readPassword } from '../password.js';
import { ProgressBar } from '../progressBar.js';
import { storedSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';
import { cacheMaxBytes, defaultCacheDir } from './cache.js';

export const pullCommand: Command = {
  name: 'pull',
  summary: 'Download and decrypt a resource on this (bound) device',
  usage:
    'FOLDER NAME [-o PATH] [--cache DIR | --use-cache] [--cache-max SIZE] [--sha256] [--json] [--password-stdin]',
  help: [
    '  -o, --output PATH  where the plaintext goes (default ./NAME; a directory gets DIR/NAME);',
    '                     it appears only when complete and verified',
    '  --cache DIR        keep the verified big part in the shared cache DIR and reuse it on the',
    '                     next pull; pulls of the same part at once fetch it once (the others wait)',
    '  --use-cache        the same in the default cache ($XDG_CACHE_HOME/sluice or ~/.cache/sluice)',
    '  --cache-max SIZE   keep the cache under SIZE (e.g. 20GiB), evicting the least recently used',
    '                     entries (default $SLUICE_CACHE_MAX; see `sluice cache`)',
    '  --sha256           also print the SHA-256 of the plaintext',
    '  --json             print one JSON line {folder,name,version,size,path,sha256?,fromCache,ms,mbPerSec}',
    '  --password-stdin   read the password from the first line of stdin',
    '',
    'The device envelope needs your password on every pull: $SLUICE_PASSWORD, --password-stdin',
    'or a prompt. The device is identified by its hardware hash ($SLUICE_HARDWARE_HASH overrides).',
  ],
  options: {
    output: { type: 'string', short: 'o' },
    cache: { type: 'string' },
    'use-cache': { type: 'boolean' },
    'cache-max': { type: 'string' },
    sha256: { type: 'boolean' },
    json: { type: 'boolean' },
    'password-stdin': { type: 'boolean' },
  },
  positionals: [2, 2],
  async run(values, [folder = '', name = ''], io) {
    if (typeof values.cache === 'string' && values['use-cache'] === true) {
      throw new UsageError('give either --cache DIR or --use-cache, not both');
    }
    const cacheDir =
      typeof values.cache === 'string'
        ? resolve(values.cache)
        : values['use-cache'] === true
          ? defaultCacheDir()
          : undefined;
    const maxBytes = cacheDir === undefined ? undefined : cacheMaxBytes(values, 'cache-max');
    if (cacheDir === undefined && values['cache-max'] !== undefined) {
      throw new UsageError('--cache-max needs --cache DIR or --use-cache');
    }
    let to = resolve(typeof values.output === 'string' ? values.output : name);
    if (isDirectory(to)) to = join(to, name);
    const password = await readPassword({
      env: 'SLUICE_PASSWORD',
      stdin: values['password-stdin'] === true,
      prompt: 'password: ',
    });
    const { session } = storedSession(password);
    const hardware = await hardwareHash();
    const bar = io.isTty && !values.json ? new ProgressBar(`${folder}/${name}`) : undefined;
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    const t0 = performance.now();
    try {
      const result = await loadBigSmallResource(session, name, folder, {
        to,
        password,
        hardware,
        signal: controller.signal,
        ...(cacheDir === undefined
          ? {}
          : {
              cacheDir,
              ...(maxBytes === undefined ? {} : { cacheMaxBytes: maxBytes }),
              onCacheWait: (owner) =>
                io.err(
                  `waiting for process ${owner.pid}, which is fetching the same big part into ${cacheDir}`,
                ),
            }),
        ...(bar ? { onProgress: (p) => bar.update(p.loaded, p.total) } : {}),
      });
      const ms = Math.round(performance.now() - t0);
      bar?.finish();
      const digest = values.sha256 ? (await sha256File(to)).toString('hex') : undefined;
      const report = {
        folder,
        name,
        version: result.resource.version,
        size: result.size,
        path: to,
        ...(digest === undefined ? {} : { sha256: digest }),
        fromCache: result.fromCache,
        ms,
        mbPerSec: mbPerSec(result.size, ms),
      };
      if (values.json) io.out(JSON.stringify(report));
      else {
        io.err(
          `pulled ${folder}/${name} v${report.version} → ${to} (${formatSize(report.size)} in ` +
            `${ms} ms, ${report.mbPerSec} MB/s${result.fromCache ? ', big part from cache' : ''})`,
        );
        if (digest !== undefined) io.out(`${digest}  ${to}`);
      }
      return EXIT.ok;
    } finally {
      bar?.finish();
      process.off('SIGINT', onSignal);
    }
  },
};

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
