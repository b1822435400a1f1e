import { resolve } from 'node:path';
import { hardwareInfo, pull, sha256File } from '@sluice/core';
import { defineCommand, EXIT, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { fileToStdout, outputPath, withTempFile } from '../outputPath.js';
import { ProgressBar } from '../progressBar.js';
import { trustFlag, trustList } from '../publisherFlags.js';
import { loginPassword, resolveLogin, serverSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';
import { optionalVersion } from '../versionArg.js';
import { withInterrupt } from '../withInterrupt.js';
import { cacheMaxBytes, defaultCacheDir } from './cache.js';
import { offlineUse } from './offlineUse.js';

export const pullCommand = defineCommand({
  name: 'pull',
  summary: 'Download and decrypt a resource on this (bound) device',
  usage:
    'FOLDER NAME [--version N] [-o PATH] [--cache DIR | --use-cache] [--cache-max SIZE] [--offline] [--trust FILE…] [--sha256] [--json] [--password-stdin]',
  flags: {
    output: {
      type: 'string',
      short: 'o',
      value: 'PATH',
      help:
        'where the plaintext goes (default ./NAME; a directory, or a path ending in / (created ' +
        'if missing), gets DIR/NAME; - is stdout); it appears only when complete and verified',
    },
    cache: {
      ...commonFlags.cache,
      help:
        'keep the verified big part in the shared cache DIR and reuse it on the next pull; ' +
        'pulls of the same part at once fetch it once (the others wait); a cache that cannot be ' +
        'used (read-only, a file, a full disk) is skipped with one warning',
    },
    'use-cache': {
      type: 'boolean',
      help: 'the same in the default cache ($XDG_CACHE_HOME/sluice or ~/.cache/sluice)',
    },
    'cache-max': {
      type: 'string',
      value: 'SIZE',
      help:
        'keep the cache under SIZE (e.g. 20GiB), evicting the least recently used entries ' +
        '(default $SLUICE_CACHE_MAX; see `sluice cache`)',
    },
    version: {
      ...commonFlags.version,
      help: 'pull version N instead of the released one (`sluice ls --versions FOLDER NAME`)',
    },
    offline: {
      type: 'boolean',
      help:
        'open the resource from its offline lease in the cache (DIR, else the --use-cache one) ' +
        'without contacting the server; with a cache a pull does so by itself, with a warning, ' +
        'when the server cannot be reached',
    },
    trust: trustFlag,
    sha256: { type: 'boolean', help: 'also print the SHA-256 of the plaintext' },
    json: {
      ...commonFlags.json,
      help: 'print one JSON line {folder,name,version,size,path,sha256?,fromCache,publisher,ms,mbPerSec}',
    },
    'password-stdin': commonFlags['password-stdin'],
    server: commonFlags.server,
  },
  notes: [
    'The device envelope needs your password on every pull: $SLUICE_PASSWORD, --password-stdin',
    'or a prompt. With -o - the plaintext is held in a private temp file until verified, then',
    'copied to stdout: nothing reaches stdout from a pull that fails. The device is identified by its hardware hash ($SLUICE_HARDWARE_HASH overrides).',
    'Before anything is written the manifest is checked: its resource version, its publisher',
    "signature (a bad one is always refused), the trust list, the small part's digest.",
  ],
  positionals: [2, 2],
  async run(values, [folder = '', name = ''], io) {
    if (values.cache !== undefined && values['use-cache'] === true) {
      throw new UsageError('give either --cache DIR or --use-cache, not both');
    }
    const cacheDir =
      values.cache !== undefined
        ? resolve(values.cache)
        : values['use-cache'] === true || values.offline === true
          ? defaultCacheDir()
          : undefined;
    if (cacheDir === undefined && values['cache-max'] !== undefined) {
      throw new UsageError('--cache-max needs --cache DIR or --use-cache');
    }
    const maxBytes = cacheDir === undefined ? undefined : cacheMaxBytes(values['cache-max']);
    const to = await outputPath(values.output ?? name, name);
    if (to === undefined && values.json) {
      throw new UsageError('--json prints to stdout: not with -o - (the plaintext goes there)');
    }
    const version = optionalVersion(values.version);
    const trustedPublishers = await trustList(values.trust);
    const login = resolveLogin(values.server);
    const password = await loginPassword(login, values['password-stdin']);
    const { session } = await serverSession(login, { password });
    // The factor digests let the server accept this device when one factor drifted.
    const { hash: hardware, digests: hardwareFactors } = await hardwareInfo();
    const bar = ProgressBar.forTransfer(io, values.json, `${folder}/${name}`);
    const t0 = performance.now();
    const pullInto = (path: string) =>
      withInterrupt((signal) =>
        pull(session, folder, name, {
          to: path,
          version,
          password,
          hardware,
          hardwareFactors,
          signal,
          cacheDir,
          cacheMaxBytes: maxBytes,
          trustedPublishers,
          ...offlineUse(values.offline === true, cacheDir, io, `${folder}/${name}`, login.server),
          onCacheWait: (owner) =>
            io.err(
              `waiting for process ${owner.pid}, which is fetching the same big part into ${cacheDir}`,
            ),
          onWarning: (w) => io.err(`warning: ${w.message}`),
          onProgress: bar ? (p) => bar.update(p.loaded, p.total) : undefined,
        }),
      );
    try {
      const { result, digest } = await deliver(to, name, values.sha256 === true, pullInto);
      const ms = Math.round(performance.now() - t0);
      bar?.finish();
      const { size, fromCache, publisher } = result;
      const version = result.resource.version;
      const speed = mbPerSec(size, ms);
      const shown = to ?? 'stdout';
      const { offline, leaseNotAfter } = result;
      const report = { folder, name, version, size, path: to, sha256: digest, fromCache, offline };
      if (values.json) {
        io.out(JSON.stringify({ ...report, leaseNotAfter, publisher, ms, mbPerSec: speed }));
      } else {
        io.err(
          `pulled ${folder}/${name} v${version} → ${shown} (${formatSize(size)} in ` +
            `${ms} ms, ${speed} MB/s${fromCache ? ', big part from cache' : ''})`,
        );
        io.err(publisher === null ? 'unsigned (no publisher signature)' : `signed by ${publisher}`);
        if (offline) io.err(`opened offline from its lease (valid until ${leaseNotAfter})`);
        else if (leaseNotAfter)
          io.err(`offline lease kept: opens without the server until ${leaseNotAfter}`);
        // With -o - stdout holds the plaintext: the digest line goes to stderr.
        if (digest !== undefined) (to === undefined ? io.err : io.out)(`${digest}  ${shown}`);
      }
      return EXIT.ok;
    } finally {
      bar?.finish();
    }
  },
});

/**
 * Pulls into `to`, or (undefined: stdout) into a private temp file that is copied to stdout only
 * once the pull verified it; the SHA-256 of the plaintext when asked.
 */
async function deliver<T>(
  to: string | undefined,
  name: string,
  sha256: boolean,
  pullInto: (path: string) => Promise<T>,
): Promise<{ result: T; digest: string | undefined }> {
  const digestOf = async (path: string) =>
    sha256 ? (await sha256File(path)).toString('hex') : undefined;
  if (to !== undefined) {
    const result = await pullInto(to);
    return { result, digest: await digestOf(to) };
  }
  return withTempFile(name, async (path) => {
    const result = await pullInto(path);
    const digest = await digestOf(path);
    await fileToStdout(path);
    return { result, digest };
  });
}
