import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  checkResourceName,
  hardwareHash,
  LOAD_MANY_DEFAULTS,
  type LoadManyResult,
  type LoadRequest,
  loadMany,
} from '@sluice/core';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { type Command, EXIT, UsageError, type Values } from '../command.js';
import { readPassword } from '../password.js';
import { ProgressBar } from '../progressBar.js';
import { storedSession } from '../storedSession.js';
import { formatSize, mbPerSec } from '../units.js';

export const batchCommand: Command = {
  name: 'batch',
  summary: 'Download and decrypt many resources at once, from a JSON or YAML list',
  usage: 'FILE [--concurrency N] [--cache DIR] [--json] [--password-stdin]',
  help: [
    '  --concurrency N      resources loading at once (default 8)',
    '  --api-concurrency N  API requests in flight over the whole batch (default 4)',
    '  --cdn-concurrency N  big-part connections over the whole batch (default 16)',
    '  --cache DIR          keep verified big parts in DIR and reuse them',
    '  --json               one JSON line per resource as it finishes',
    '                       {folder,name,to,ok,size,fromCache} or {folder,name,to,ok:false,code,error},',
    '                       then {"summary":{count,ok,failed,bytes,ms,mbPerSec}}',
    '  --password-stdin     read the password from the first line of stdin',
    '',
    'FILE is a list of {folder, name, to} (JSON or YAML); a relative `to` is resolved against',
    "FILE's directory, a missing one is NAME there, and one ending in / (or an existing directory)",
    'gets NAME inside. Each file appears only when complete and verified; a failure does not stop',
    'the others. Exit code 1 when any resource failed, 2 when FILE is malformed.',
  ],
  options: {
    concurrency: { type: 'string' },
    'api-concurrency': { type: 'string' },
    'cdn-concurrency': { type: 'string' },
    cache: { type: 'string' },
    json: { type: 'boolean' },
    'password-stdin': { type: 'boolean' },
  },
  positionals: [1, 1],
  async run(values, [file = ''], io) {
    const requests = readBatchFile(file);
    const limits = {
      concurrency: count(values, 'concurrency', LOAD_MANY_DEFAULTS.concurrency),
      apiConcurrency: count(values, 'api-concurrency', LOAD_MANY_DEFAULTS.apiConcurrency),
      cdnConcurrency: count(values, 'cdn-concurrency', LOAD_MANY_DEFAULTS.cdnConcurrency),
    };
    const password = await readPassword({
      env: 'SLUICE_PASSWORD',
      stdin: values['password-stdin'] === true,
      prompt: 'password: ',
    });
    const { session } = storedSession(password);
    const hardware = await hardwareHash();
    for (const r of requests) mkdirSync(dirname(r.to), { recursive: true });
    const bar =
      io.isTty && !values.json ? new ProgressBar(`batch of ${requests.length}`) : undefined;
    // Sizes are known once each envelope is open: until then the bar's total is an estimate.
    const sized = new Set<number>();
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    const t0 = performance.now();
    const failures: string[] = [];
    try {
      const results = await loadMany(session, requests, {
        ...limits,
        password,
        hardware,
        signal: controller.signal,
        ...(typeof values.cache === 'string' ? { cacheDir: resolve(values.cache) } : {}),
        onProgress: (p) => {
          if (bar) {
            if (p.resource.total > 0 || p.result !== undefined) sized.add(p.index);
            const unsized = p.count - sized.size;
            const estimate = sized.size > 0 ? p.total + (unsized * p.total) / sized.size : 0;
            bar.update(p.loaded, Math.round(estimate));
          }
          if (p.result === undefined) return;
          if (values.json) io.out(JSON.stringify(jsonLine(p.result)));
          else if (!bar) io.err(describe(p.result));
          else if (!p.result.ok) failures.push(describe(p.result));
        },
      });
      const ms = Math.round(performance.now() - t0);
      bar?.finish();
      const ok = results.filter((r) => r.ok);
      const bytes = ok.reduce((a, r) => a + r.size, 0);
      const summary = {
        count: results.length,
        ok: ok.length,
        failed: results.length - ok.length,
        fromCache: ok.filter((r) => r.fromCache).length,
        bytes,
        ms,
        mbPerSec: mbPerSec(bytes, ms),
      };
      if (values.json) io.out(JSON.stringify({ summary }));
      else {
        if (bar) for (const line of failures) io.err(line);
        io.err(
          `batch: ${summary.ok} of ${summary.count} loaded (${formatSize(bytes)} in ${ms} ms, ` +
            `${summary.mbPerSec} MB/s${summary.fromCache ? `, ${summary.fromCache} big parts from cache` : ''})` +
            (summary.failed ? `, ${summary.failed} failed` : ''),
        );
      }
      return summary.failed === 0 ? EXIT.ok : EXIT.failed;
    } finally {
      bar?.finish();
      process.off('SIGINT', onSignal);
    }
  },
};

/**
 * The requests of a batch file, each `to` resolved against the file's directory; a UsageError
 * (exit 2) that names the entry and its line for anything malformed.
 */
export function readBatchFile(file: string): LoadRequest[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
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
  const base = dirname(resolve(file));
  const seen = new Map<string, number>();
  return list.items.map((item, i) => {
    const line = isMap(item) || isSeq(item) ? lines.linePos(item.range?.[0] ?? 0).line : undefined;
    const where = `${file}: entry ${i + 1}${line === undefined ? '' : ` (line ${line})`}`;
    if (!isMap(item)) throw new UsageError(`${where}: expected {folder, name, to}`);
    const entry = item.toJSON() as Record<string, unknown>;
    const unknown = Object.keys(entry).filter((k) => !['folder', 'name', 'to'].includes(k));
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
    return { folder, name, to };
  });
}

function count(values: Values, flag: string, fallback: number): number {
  const v = values[flag];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : 0;
  if (n <= 0 || !Number.isSafeInteger(n)) {
    throw new UsageError(`--${flag} must be a positive integer, got '${String(v)}'`);
  }
  return n;
}

function jsonLine(r: LoadManyResult): Record<string, unknown> {
  const { folder, name, to } = r;
  if (r.ok) return { folder, name, to, ok: true, size: r.size, fromCache: r.fromCache };
  return { folder, name, to, ok: false, code: r.error.code, error: firstLine(r.error.message) };
}

function describe(r: LoadManyResult): string {
  if (r.ok) {
    return `loaded ${r.folder}/${r.name} → ${r.to} (${formatSize(r.size)}${r.fromCache ? ', big part from cache' : ''})`;
  }
  return `failed ${r.folder}/${r.name}: ${firstLine(r.error.message)} (${r.error.code})`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
