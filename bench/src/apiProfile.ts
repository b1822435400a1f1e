// bench:api --profile: the V8 CPU profile of the server child during the load, its self time
// summed by where the code lives (the frame's own file, or for built-ins such as JSON.stringify
// or base64 the nearest caller with a file), so "the rest" of an envelope request gets names.
import { Session } from 'node:inspector';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  /** ms of self time in the whole load phase, by area, largest first. */
  areas: Array<{ area: string; ms: number }>;
  /** The functions with the most self time: `name (file:line)`. */
  top: Array<{ fn: string; area: string; ms: number }>;
  totalMs: number;
}

/** Where a frame's file belongs; undefined for frames without one (built-ins, natives). */
export function areaOf(url: string, functionName: string): string | undefined {
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8 and native code outside JS';
  if (url === '') return undefined;
  if (/packages\/core\/|@sluice\/core/.test(url)) return '@sluice/core (sealEnvelope)';
  if (/packages\/server\/|@sluice\/server/.test(url))
    return '@sluice/server (routes, guard, stores)';
  if (/\/jose\//.test(url)) return 'jose (access token EdDSA check)';
  if (
    /\/(fastify|@fastify|find-my-way|avvio|fast-json-stringify|ajv|secure-json-parse)\//.test(url)
  ) {
    return 'fastify (routing, hooks, body parse, schema, reply)';
  }
  if (/internal\/crypto|node:crypto/.test(url)) return 'node:crypto';
  if (/_http|node:http|internal\/http|llhttp/.test(url)) return 'node:http';
  if (/node:net|internal\/stream|node:stream|internal\/streams|node:events/.test(url)) {
    return 'node sockets and streams';
  }
  if (/node:buffer|internal\/buffer/.test(url)) return 'node:buffer';
  if (url.startsWith('node:')) return 'other node internals';
  if (/bench\/dist\//.test(url)) return 'bench (timing hooks)';
  return 'other dependencies';
}

/** Starts the profiler; `stop` ends it and sums the samples. */
export function startProfile(): { stop(): Promise<ProfileSummary> } {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) =>
      session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T))),
    );
  const started = post('Profiler.enable')
    .then(() => post('Profiler.setSamplingInterval', { interval: 200 }))
    .then(() => post('Profiler.start'));
  return {
    async stop() {
      await started;
      const { profile } = await post<{ profile: CpuProfile }>('Profiler.stop');
      session.disconnect();
      return summarize(profile);
    },
  };
}

export function summarize(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; the time after it belongs to it.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    const us = deltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + us);
  }
  // node:crypto, node:buffer and built-ins are counted with the package that called them (so
  // jose's signature check or sealEnvelope's base64 show under their names); sockets stay node's.
  const PACKAGE = /^(@sluice|jose|fastify|bench)/;
  const borrowed = (area: string) => area === 'node:crypto' || area === 'node:buffer';
  const areaMemo = new Map<number, string | undefined>();
  const packageAbove = (id: number): string | undefined => {
    if (areaMemo.has(id)) return areaMemo.get(id);
    const n = byId.get(id);
    const own = n === undefined ? undefined : areaOf(n.callFrame.url, n.callFrame.functionName);
    let found: string | undefined;
    if (own !== undefined && PACKAGE.test(own)) found = own;
    else {
      const p = parent.get(id);
      found = p === undefined ? undefined : packageAbove(p);
    }
    areaMemo.set(id, found);
    return found;
  };
  const areaFor = (id: number): string => {
    const n = byId.get(id);
    const own = n === undefined ? undefined : areaOf(n.callFrame.url, n.callFrame.functionName);
    if (own === undefined) {
      // A built-in (JSON.stringify, a native write): where its nearest caller with a file is.
      const p = parent.get(id);
      return p === undefined ? 'other' : areaFor(p);
    }
    if (borrowed(own)) return packageAbove(id) ?? own;
    return own;
  };
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number }>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const area = areaFor(id);
    if (area === 'idle') continue;
    total += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const file = n.callFrame.url.split('/').slice(-2).join('/');
    const name = `${n.callFrame.functionName || '(anonymous)'}${file === '' ? '' : ` (${file}:${n.callFrame.lineNumber + 1})`}`;
    const f = fns.get(name) ?? { area, us: 0 };
    f.us += us;
    fns.set(name, f);
  }
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: ms(us) })),
    top: [...fns]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 12)
      .map(([fn, f]) => ({ fn, area: f.area, ms: ms(f.us) })),
    totalMs: ms(total),
  };
}
