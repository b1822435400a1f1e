import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import {
  BigPartCache,
  type CacheEntry,
  type CacheProblem,
  cacheDirProblem,
  type VerifiedEntry,
} from '@sluice/core';
import { defineCommand, EXIT, type Io, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { deprecatedAlias, type Flag, type Flags, type FlagValues } from '../flags.js';
import { isDirectory } from '../isDirectory.js';
import { formatSize, parseSize } from '../units.js';

/** `$XDG_CACHE_HOME/sluice` (when absolute, as the XDG spec requires), else `~/.cache/sluice`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'sluice');
  return join(homedir(), '.cache', 'sluice');
}

/** A size limit from the flag's value, else `$SLUICE_CACHE_MAX`, else none. */
export function cacheMaxBytes(given: string | undefined): number | undefined {
  if (given !== undefined) return parseSize(given);
  const env = process.env.SLUICE_CACHE_MAX;
  if (env !== undefined && env !== '') {
    try {
      return parseSize(env);
    } catch (e) {
      throw new UsageError(`$SLUICE_CACHE_MAX: ${(e as Error).message}`);
    }
  }
  return undefined;
}

const SUBCOMMANDS = ['ls', 'verify', 'prune'] as const;

const cacheFlag = {
  ...commonFlags.cache,
  help: 'the cache (default $XDG_CACHE_HOME/sluice or ~/.cache/sluice, the one `pull --use-cache` fills)',
} satisfies Flag;
const cacheMaxFlag = {
  type: 'string',
  value: 'SIZE',
  help: 'prune: remove least recently used entries until the cache holds at most SIZE, e.g. 20GiB (default $SLUICE_CACHE_MAX)',
} satisfies Flag;

const flags = {
  cache: cacheFlag,
  json: commonFlags.json,
  'cache-max': cacheMaxFlag,
  all: { type: 'boolean', help: 'prune: remove every entry' },
  // Their names before they matched pull's and batch's.
  dir: deprecatedAlias(cacheFlag, 'cache'),
  max: deprecatedAlias(cacheMaxFlag, 'cache-max'),
} satisfies Flags;

export const cacheCommand = defineCommand({
  name: 'cache',
  actions: SUBCOMMANDS,
  summary: 'List, verify or prune the local cache of big parts',
  usage:
    'ls [--json] [--cache DIR]\nverify [--json] [--cache DIR]\nprune (--cache-max SIZE | --all) [--json] [--cache DIR]',
  flags,
  notes: [
    'The cache keeps the verified, still encrypted big parts of pulled resources, named by the',
    'SHA-256 of their manifest, each with its manifest. `verify` checks every entry against its',
    'manifest, removes the corrupt ones and exits 1 if there were any. Entries that a running',
    'pull holds are never removed. `verify` also says when pulls cannot use the cache (read-only,',
    'not a directory, cannot be created, no space; they go on without it) and then exits 1.',
  ],
  positionals: [1, 1],
  async run(values, [sub = ''], io) {
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new UsageError(`unknown subcommand '${sub}' (expected ${SUBCOMMANDS.join(', ')})`);
    }
    if (sub !== 'prune' && (values['cache-max'] !== undefined || values.all !== undefined)) {
      throw new UsageError('--cache-max and --all apply to prune only');
    }
    const dir = values.cache === undefined ? defaultCacheDir() : resolve(values.cache);
    const json = values.json === true;
    if (sub === 'prune') return prune(io, json, dir, values);
    const cache = isDirectory(dir) ? await BigPartCache.open(dir) : undefined;
    if (sub === 'ls') return list(io, json, dir, (await cache?.list()) ?? []);
    const unusable = await cacheDirProblem(dir, { create: false });
    // A read-only cache still reads; only a corrupt entry could not be removed from it.
    const checked = unusable === undefined ? cache?.verify() : cache?.verify().catch(() => []);
    return verify(io, json, dir, (await checked) ?? [], unusable);
  },
});

async function prune(
  io: Io,
  json: boolean,
  dir: string,
  values: FlagValues<typeof flags>,
): Promise<number> {
  if (values.all === true && values['cache-max'] !== undefined) {
    throw new UsageError('give either --cache-max SIZE or --all, not both');
  }
  const max = values.all === true ? undefined : cacheMaxBytes(values['cache-max']);
  if (values.all !== true && max === undefined) {
    throw new UsageError('give --cache-max SIZE (or set $SLUICE_CACHE_MAX) or --all');
  }
  if (!isDirectory(dir)) return report(io, json, { dir, removed: [], left: [] });
  const cache = await BigPartCache.open(dir);
  const removed = await cache.prune(values.all === true ? { all: true } : { maxBytes: max });
  return report(io, json, { dir, removed, left: await cache.list() });
}

function list(io: Io, json: boolean, dir: string, entries: CacheEntry[]): number {
  if (json) {
    io.out(JSON.stringify({ dir, totalBytes: total(entries), entries: entries.map(entryJson) }));
    return EXIT.ok;
  }
  if (entries.length === 0) {
    io.err(`${dir}: the cache is empty`);
    return EXIT.ok;
  }
  io.out(`${'ENTRY'.padEnd(16)}  ${'SIZE'.padStart(10)}  ${'LAST USED'.padEnd(19)}  RESOURCE`);
  for (const e of entries) {
    io.out(
      `${e.digest.slice(0, 16)}  ${formatSize(e.size).padStart(10)}  ${localTime(e.lastUsed)}  ${describe(e)}`,
    );
  }
  io.err(`${count(entries.length)}, ${formatSize(total(entries))} in ${dir}`);
  return EXIT.ok;
}

function verify(
  io: Io,
  json: boolean,
  dir: string,
  checked: VerifiedEntry[],
  unusable: CacheProblem | undefined,
): number {
  const by = (s: VerifiedEntry['status']) => checked.filter((e) => e.status === s).length;
  const summary = { ok: by('ok'), corrupt: by('corrupt'), unverifiable: by('unverifiable') };
  if (json) {
    const entries = checked.map((e) => ({
      ...entryJson(e),
      status: e.status,
      reason: e.reason,
      removed: e.removed,
    }));
    const why = unusable && { kind: unusable.kind, errno: unusable.errno ?? null };
    io.out(JSON.stringify({ dir, unusable: why ?? null, ...summary, entries }));
  } else {
    for (const e of checked) {
      const why = e.reason === undefined ? '' : ` (${e.reason})`;
      const removed = e.removed ? ', removed' : '';
      io.out(`${e.status.padEnd(12)}  ${e.digest.slice(0, 16)}  ${describe(e)}${why}${removed}`);
    }
    io.err(
      `${count(checked.length)} checked in ${dir}: ${summary.ok} ok, ${summary.corrupt} corrupt` +
        `${summary.corrupt > 0 ? ' (removed; the next pull fetches them again)' : ''}, ` +
        `${summary.unverifiable} without a stored manifest`,
    );
    if (unusable !== undefined) {
      io.err(`${unusable.message}: pulls with this cache go on without it, from the network`);
    }
  }
  return summary.corrupt > 0 || unusable !== undefined ? EXIT.failed : EXIT.ok;
}

function report(
  io: Io,
  json: boolean,
  r: { dir: string; removed: CacheEntry[]; left: CacheEntry[] },
): number {
  if (json) {
    io.out(
      JSON.stringify({
        dir: r.dir,
        freedBytes: total(r.removed),
        totalBytes: total(r.left),
        removed: r.removed.map(entryJson),
      }),
    );
  } else {
    for (const e of r.removed) io.out(`removed  ${e.digest.slice(0, 16)}  ${describe(e)}`);
    io.err(
      `removed ${count(r.removed.length)} (${formatSize(total(r.removed))}); ` +
        `${r.dir} holds ${count(r.left.length)}, ${formatSize(total(r.left))}`,
    );
  }
  return EXIT.ok;
}

function entryJson(e: CacheEntry) {
  return {
    digest: e.digest,
    path: e.path,
    size: e.size,
    lastUsed: e.lastUsed.toISOString(),
    complete: e.complete,
    resource: e.resource ?? null,
  };
}

function describe(e: CacheEntry): string {
  if (!e.complete) return '(partial download)';
  if (e.resource === undefined) return '(resource unknown)';
  return `${e.resource.folder}/${e.resource.name} v${e.resource.version}`;
}

const total = (entries: CacheEntry[]) => entries.reduce((sum, e) => sum + e.size, 0);
const count = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}`;

/** `2026-11-23 15:40:01`, local time. */
function localTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
