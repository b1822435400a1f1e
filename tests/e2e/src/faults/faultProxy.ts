// A loopback HTTP proxy between a client and a real upstream (the API or radosgw) that injects
// faults per request: an error status instead of the answer, a connection reset after N body
// bytes, rewritten response headers, a stalled body, or a request held back until the test lets
// it go. Requests and responses are forwarded byte for byte (Host included, so S3 signatures
// still verify), and every exchange is logged for the test to count and wait on.
import { EventEmitter } from 'node:events';
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

export interface ProxiedRequest {
  /** 1-based number of this request at the proxy. */
  n: number;
  method: string;
  /** Path without the query. */
  path: string;
  /** Path with the query, as sent. */
  url: string;
  range: string | undefined;
  headers: IncomingHttpHeaders;
}

export type Fault =
  /** Answer with this status (and a small JSON or XML body) without asking the upstream. */
  | { kind: 'status'; status: number }
  /** Forward, then reset the client's connection (TCP RST) after `afterBytes` body bytes. */
  | { kind: 'reset'; afterBytes: number }
  /** Forward with the response headers changed by `headers`. */
  | { kind: 'rewrite'; headers: (h: IncomingHttpHeaders) => IncomingHttpHeaders }
  /** Forward with the body byte at offset `at` flipped (a bit error no TCP checksum caught). */
  | { kind: 'corrupt'; at: number }
  /** Forward about `afterBytes` of the request body, then the rest only once `until` resolves. */
  | { kind: 'pauseUpload'; afterBytes: number; until: Promise<unknown> }
  /** Forward the head and `afterBytes` body bytes, then send nothing more (the socket stays open). */
  | { kind: 'stall'; afterBytes: number }
  /**
   * Forward only once `until` resolves; the rule is then asked again (a hold on the same promise
   * counts as none).
   */
  | { kind: 'hold'; until: Promise<unknown> };

export type Rule = (req: ProxiedRequest) => Fault | undefined;

export interface Exchange {
  n: number;
  method: string;
  path: string;
  range: string | undefined;
  /** The bearer token (or S3 credential scope) the request carried, if any. */
  authorization: string | undefined;
  /** What the proxy did: 'pass', a fault kind, or 'refused' (the upstream was unreachable). */
  action: 'pass' | Fault['kind'] | 'refused';
  /** Status the client received (undefined until the head was sent, or never). */
  status?: number;
  /** Request body bytes forwarded upstream. */
  requestBytes: number;
  /** Response body bytes sent to the client. */
  responseBytes: number;
  /** True once the exchange is over (answered completely, cut, or failed). */
  done: boolean;
  /** Milliseconds since the proxy started, when the request arrived. */
  at: number;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade'];

/** A fault-injecting HTTP proxy on 127.0.0.1 in front of `target` (an http:// origin). */
export class FaultProxy {
  readonly url: string;
  readonly port: number;
  /** Every request the proxy received, in arrival order. */
  readonly log: Exchange[] = [];
  /** Decides the fault of each request; undefined passes it through. */
  rule: Rule = () => undefined;
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #target: URL;
  readonly #events = new EventEmitter();
  readonly #sockets = new Set<Socket>();
  readonly #started = Date.now();
  #closed = false;

  private constructor(server: Server, target: URL, port: number) {
    this.#server = server;
    this.#target = target;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.#events.setMaxListeners(100);
  }

  static async start(target: string, rule?: Rule): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no proxy address');
    const proxy = new FaultProxy(server, new URL(target), address.port);
    if (rule) proxy.rule = rule;
    server.on('connection', (s: Socket) => {
      proxy.#sockets.add(s);
      s.once('close', () => proxy.#sockets.delete(s));
    });
    server.on('request', (req, res) => {
      proxy.#handle(req, res).catch(() => res.socket?.destroy());
    });
    return proxy;
  }

  /** Exchanges matching `method` and a path that contains `pathPart`. */
  requests(method: string, pathPart: string): Exchange[] {
    return this.log.filter((e) => e.method === method && e.path.includes(pathPart));
  }

  /** Resolves once `predicate` holds for the log (checked on every change), or rejects after `ms`. */
  waitFor(what: string, predicate: (log: Exchange[]) => boolean, ms = 120_000): Promise<void> {
    if (predicate(this.log)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this.log)) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`proxy: timed out waiting for ${what}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#events.off('change', check);
      };
      this.#events.on('change', check);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #changed(): void {
    this.#events.emit('change');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const auth = req.headers.authorization;
    const info: ProxiedRequest = {
      n: this.log.length + 1,
      method: req.method ?? 'GET',
      path: url.split('?')[0] ?? url,
      url,
      range: req.headers.range,
      headers: req.headers,
    };
    const exchange: Exchange = {
      n: info.n,
      method: info.method,
      path: info.path,
      range: info.range,
      authorization: typeof auth === 'string' ? auth : undefined,
      action: 'pass',
      requestBytes: 0,
      responseBytes: 0,
      done: false,
      at: Date.now() - this.#started,
    };
    this.log.push(exchange);
    const finish = () => {
      exchange.done = true;
      this.#changed();
    };
    res.once('close', finish);
    this.#changed();

    let fault = this.rule(info);
    let waited: Promise<unknown> | undefined;
    while (fault?.kind === 'hold') {
      // Held again on a promise already waited for: the hold is over (never spin on it).
      if (fault.until === waited) {
        fault = undefined;
        break;
      }
      waited = fault.until;
      exchange.action = 'hold';
      this.#changed();
      await fault.until;
      if (this.#closed || res.destroyed) return;
      fault = this.rule(info);
    }
    exchange.action = fault?.kind ?? 'pass';
    this.#changed();
    if (fault?.kind === 'status') {
      req.resume();
      exchange.status = fault.status;
      const body = JSON.stringify({ error: 'injected fault', code: 'ERR_INJECTED' });
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }

    const headers: IncomingHttpHeaders = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    const up = request({
      host: this.#target.hostname,
      port: this.#target.port,
      method: info.method,
      path: url,
      headers,
      agent: this.#agent,
    });
    let paused = false;
    let pausedOnce = false;
    req.on('data', (d: Buffer) => {
      exchange.requestBytes += d.length;
      if (!up.write(d)) {
        req.pause();
        up.once('drain', () => {
          if (!paused) req.resume();
        });
      }
      if (
        fault?.kind === 'pauseUpload' &&
        !pausedOnce &&
        exchange.requestBytes >= fault.afterBytes
      ) {
        paused = true;
        pausedOnce = true;
        req.pause();
        void fault.until.then(() => {
          paused = false;
          req.resume();
        });
      }
      this.#changed();
    });
    req.on('end', () => up.end());
    req.on('aborted', () => up.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.on('error', () => {
      if (exchange.status === undefined) exchange.action = 'refused';
      // The upstream is down or cut: the client sees its connection drop, as with a dead server.
      res.socket?.resetAndDestroy();
      this.#changed();
    });
    up.on('response', (upRes) => this.#answer(upRes, res, fault, exchange));
  }

  #answer(
    upRes: IncomingMessage,
    res: ServerResponse,
    fault: Exclude<Fault, { kind: 'hold' } | { kind: 'status' }> | undefined,
    exchange: Exchange,
  ): void {
    let headers: IncomingHttpHeaders = { ...upRes.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    if (fault?.kind === 'rewrite') headers = fault.headers(headers);
    const status = upRes.statusCode ?? 502;
    exchange.status = status;
    res.writeHead(status, headers as Record<string, string | string[]>);
    this.#changed();
    const limit =
      fault?.kind === 'reset' || fault?.kind === 'stall'
        ? fault.afterBytes
        : Number.POSITIVE_INFINITY;
    upRes.on('data', (d: Buffer) => {
      const room = limit - exchange.responseBytes;
      if (room <= 0) return;
      const part = d.length <= room ? d : d.subarray(0, room);
      const at = fault?.kind === 'corrupt' ? fault.at - exchange.responseBytes : -1;
      if (at >= 0 && at < part.length) part[at] = (part[at] as number) ^ 0x01;
      exchange.responseBytes += part.length;
      const cut = fault?.kind === 'reset' && exchange.responseBytes >= limit;
      // On a cut, the bytes go out first so the client holds part of the chunk when the RST comes.
      res.write(part, () => {
        if (cut) res.socket?.resetAndDestroy();
      });
      this.#changed();
      if (exchange.responseBytes >= limit) upRes.destroy();
    });
    upRes.on('end', () => {
      if (exchange.responseBytes < limit) res.end();
    });
    upRes.on('error', () => {
      if (exchange.responseBytes < limit) res.socket?.resetAndDestroy();
    });
  }
}

/** `bytes=a-b` → [a, b], for rules that pick a chunk. */
export function rangeOf(range: string | undefined): [number, number] | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}
