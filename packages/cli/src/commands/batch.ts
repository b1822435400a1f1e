import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  checkResourceName,
  hardwareInfo,
  PULL_MANY_DEFAULTS,
  type PullManyProgress,
  type PullManyResult,
  type PullRequest,
  pullMany,
} from '@sluice/core';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { defineCommand, EXIT, type Io, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import type { Flag } from '../flags.js';
import { isDirectory } from '../isDirectory.js';
import { STDIO } from '../outputPath.js';
import { ProgressBar } from '../progressBar.js';
import { trustFlag, trustList } from '../publisherFlags.js';
import { loginPassword, resolveLogin, serverSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';
import { parseVersionArg } from '../versionArg.js';
import { withInterrupt } from '../withInterrupt.js';

const limit = (help: string, fallback: number) =>
  ({ type: 'string', value: 'N', help, default: String(fallback) }) satisfies Flag;

export const batchCommand = defineCommand({
  name: 'batch',
  summary: 'Download and decrypt many resources at once, from a JSON or YAML list',
  usage: 'FILE [--concurrency N] [--cache DIR] [--trust FILE…] [--json] [--password-stdin]',
  flags: {
    concurrency: limit('resources pulled at once', PULL_MANY_DEFAULTS.concurrency),
    'api-concurrency': limit(
      'API requests in flight over the whole batch',
      PULL_MANY_DEFAULTS.apiConcurrency,
    ),
    'cdn-concurrency': limit(
      'big-part connections over the whole batch',
      PULL_MANY_DEFAULTS.cdnConcurrency,
    ),
    cache: commonFlags.cache,
    trust: trustFlag,
    json: {
      ...commonFlags.json,
      help:
        'one JSON line per resource as it finishes {folder,name,to,version,ok,size,fromCache,publisher} or ' +
        '{folder,name,to,ok:false,code,error}, then {"summary":{count,ok,failed,bytes,ms,mbPerSec}}',
    },
    'password-stdin': commonFlags['password-stdin'],
    server: commonFlags.server,
  },
  notes: [
    'FILE is a list of {folder, name, to, version?} (JSON or YAML; - reads it from stdin, which then cannot',
    'also give the password); a relative `to` is resolved against',
    "FILE's directory (the current one for -), a missing one is NAME there, and one ending in / (or an existing directory)",
    'gets NAME inside. Without `version` an entry gets the released version.',
    'Each file appears only when complete and verified; a failure does not stop',
    'the others. Exit code 1 when any resource failed, 2 when FILE is malformed.',
  ],
  positionals: [1, 1],
  async run(values, [file = ''], io) {
    if (file === STDIO && values['password-stdin']) {
      throw new UsageError(
        'batch - reads the list from stdin: give the password in $SLUICE_PASSWORD',
      );
    }
    const requests = readBatchFile(file);
    const limits = {
      concurrency: count(values.concurrency, 'concurrency'),
      apiConcurrency: count(values['api-concurrency'], 'api-concurrency'),
      cdnConcurrency: count(values['cdn-concurrency'], 'cdn-concurrency'),
    };
    const trustedPublishers = await trustList(values.trust);
    const login = resolveLogin(values.server);
    const password = await loginPassword(login, values['password-stdin']);
    const { session } = await serverSession(login, { password });
    const { hash: hardware, digests: hardwareFactors } = await hardwareInfo();
    for (const r of requests) mkdirSync(dirname(r.to), { recursive: true });
    const progress = new BatchProgress(io, values.json, requests.length);
    const t0 = performance.now();
    try {
      const results = await withInterrupt((signal) =>
        pullMany(session, requests, {
          ...limits,
          password,
          hardware,
          hardwareFactors,
          signal,
          cacheDir: values.cache === undefined ? undefined : resolve(values.cache),
          trustedPublishers,
          onWarning: (w) => io.err(`warning: ${w.message}`),
          onProgress: (p) => progress.update(p),
        }),
      );
      const summary = summarise(results, Math.round(performance.now() - t0));
      progress.finish();
      if (values.json) io.out(JSON.stringify({ summary }));
      else progress.report(summary);
      return summary.failed === 0 ? EXIT.ok : EXIT.failed;
    } finally {
      progress.finish();
    }
  },
});

interface BatchSummary {
  count: number;
  ok: number;
  failed: number;
  fromCache: number;
  bytes: number;
  ms: number;
  mbPerSec: number;
}

function summarise(results: PullManyResult[], ms: number): BatchSummary {
  const ok = results.filter((r) => r.ok);
  const bytes = ok.reduce((a, r) => a + r.size, 0);
  return {
    count: results.length,
    ok: ok.length,
    failed: results.length - ok.length,
    fromCache: ok.filter((r) => r.fromCache).length,
    bytes,
    ms,
    mbPerSec: mbPerSec(bytes, ms),
  };
}

/**
 * What a batch shows as it runs: a bar on a terminal (failures held until it is done), else a
 * line per resource on stderr, or one JSON line per resource with `--json`.
 */
class BatchProgress {
  private readonly bar: ProgressBar | undefined;
  /** Sizes are known once each envelope is open: until then the bar's total is an estimate. */
  private readonly sized = new Set<number>();
  private readonly failures: string[] = [];

  constructor(
    private readonly io: Io,
    private readonly json: boolean | undefined,
    count: number,
  ) {
    this.bar = ProgressBar.forTerminal(io, json, `batch of ${count}`);
  }

  update(p: PullManyProgress): void {
    const { bar, sized } = this;
    if (bar) {
      if (p.resource.total > 0 || p.result !== undefined) sized.add(p.index);
      const unsized = p.count - sized.size;
      const estimate = sized.size > 0 ? p.total + (unsized * p.total) / sized.size : 0;
      bar.update(p.loaded, Math.round(estimate));
    }
    if (p.result === undefined) return;
    if (this.json) this.io.out(JSON.stringify(jsonLine(p.result)));
    else if (!bar) this.io.err(describe(p.result));
    else if (!p.result.ok) this.failures.push(describe(p.result));
  }

  finish(): void {
    this.bar?.finish();
  }

  report(summary: BatchSummary): void {
    for (const line of this.failures) this.io.err(line);
    const { ok, count, bytes, ms, fromCache, failed } = summary;
    this.io.err(
      `batch: ${ok} of ${count} loaded (${formatSize(bytes)} in ${ms} ms, ` +
        `${summary.mbPerSec} MB/s${fromCache ? `, ${fromCache} big parts from cache` : ''})` +
        (failed ? `, ${failed} failed` : ''),
    );
  }
}

/**
 * The requests of a batch file, each `to` resolved against the file's directory; a UsageError
 * (exit 2) that names the entry and its line for anything malformed.
 */
export function readBatchFile(file: string): PullRequest[] {
  const stdin = file === STDIO;
  let text: string;
  try {
    text = readFileSync(stdin ? 0 : file, 'utf8');
  } catch (e) {
    const what = stdin ? 'the list from stdin' : file;
    throw new UsageError(`cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseBatchList(
    text,
    stdin ? 'stdin' : file,
    stdin ? process.cwd() : dirname(resolve(file)),
  );
}

/** The requests of a list read from `file` (named so in messages), relative `to`s under `base`. */
function parseBatchList(text: string, file: string, base: string): PullRequest[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first !== undefined) {
    const at = lines.linePos(first.pos[0]);
    throw new UsageError(`${file}:${at.line}: not valid JSON or YAML: ${first.message}`);
  }
  const list = doc.contents;
  if (!isSeq(list)) {
    throw new UsageError(`${file}: expected a list of {folder, name, to}`);
  }
  if (list.items.length === 0) throw new UsageError(`${file}: the list is empty`);
  const seen = new Map<string, number>();
  return list.items.map((item, i) => {
    const line = isMap(item) || isSeq(item) ? lines.linePos(item.range?.[0] ?? 0).line : undefined;
    const where = `${file}: entry ${i + 1}${line === undefined ? '' : ` (line ${line})`}`;
    if (!isMap(item)) throw new UsageError(`${where}: expected {folder, name, to}`);
    const entry = item.toJSON() as Record<string, unknown>;
    const unknown = Object.keys(entry).filter(
      (k) => !['folder', 'name', 'to', 'version'].includes(k),
    );
    if (unknown.length > 0) {
      throw new UsageError(`${where}: unknown key ${unknown.map((k) => `'${k}'`).join(', ')}`);
    }
    let folder: string;
    let name: string;
    try {
      folder = checkResourceName(entry.folder, 'folder');
      name = checkResourceName(entry.name, 'name');
    } catch (e) {
      throw new UsageError(`${where}: ${(e as Error).message}`);
    }
    if (entry.to !== undefined && (typeof entry.to !== 'string' || entry.to === '')) {
      throw new UsageError(`${where}: 'to' must be a path`);
    }
    const given = typeof entry.to === 'string' ? entry.to : '';
    let to = resolve(base, given);
    if (given === '' || given.endsWith('/') || isDirectory(to)) to = join(to, name);
    const other = seen.get(to);
    if (other !== undefined) {
      throw new UsageError(`${where}: writes to ${to}, as entry ${other + 1} does`);
    }
    seen.set(to, i);
    if (entry.version === undefined) return { folder, name, to };
    if (typeof entry.version !== 'number' && typeof entry.version !== 'string') {
      throw new UsageError(`${where}: 'version' must be a version number`);
    }
    return {
      folder,
      name,
      to,
      version: parseVersionArg(String(entry.version), `${where}: 'version'`),
    };
  });
}

function count(text: string, flag: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : 0;
  if (n <= 0 || !Number.isSafeInteger(n)) {
    throw new UsageError(`--${flag} must be a positive integer, got '${text}'`);
  }
  return n;
}

function jsonLine(r: PullManyResult): Record<string, unknown> {
  const { folder, name, to, version } = r;
  if (r.ok) {
    const { size, fromCache, publisher } = r;
    return { folder, name, to, version, ok: true, size, fromCache, publisher };
  }
  return { folder, name, to, ok: false, code: r.error.code, error: firstLine(r.error.message) };
}

function describe(r: PullManyResult): string {
  if (r.ok) {
    const signed = r.publisher === null ? 'unsigned' : `signed by ${r.publisher}`;
    return `loaded ${r.folder}/${r.name} → ${r.to} (${formatSize(r.size)}${r.fromCache ? ', big part from cache' : ''}, ${signed})`;
  }
  return `failed ${r.folder}/${r.name}: ${firstLine(r.error.message)} (${r.error.code})`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
