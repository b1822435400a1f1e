// A loopback load balancer in front of several API instances: each request goes to the next
// upstream in turn (or where the test's `choose` sends it), bodies streamed both ways, so every
// request of a client may land on any instance. Like nginx's `proxy_next_upstream error`, an
// upstream that refuses the connection is skipped (nothing was sent to it, so any request may go
// on to the next); an upstream that dies mid-answer cuts the client's connection too.
import { EventEmitter } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect, type Socket } from 'node:net';

export interface Exchange {
  /** 1-based number of the request at the proxy. */
  n: number;
  method: string;
  /** Path without the query. */
  path: string;
  range: string | undefined;
  /** The request's headers as the client sent them (a test may replay a request). */
  headers: IncomingHttpHeaders;
  /** Upstreams (indexes) that refused the connection before one took the request. */
  refused: number[];
  /** The upstream that took it; undefined while connecting or when none did. */
  upstream?: number;
  status?: number;
  /** Body bytes relayed to the client. */
  responseBytes: number;
  /** The answer's Content-Length, when it had one. */
  length?: number;
  /**
   * `open` while it runs; `complete` when the answer was relayed in full; `cut` when the
   * upstream broke off (the client's connection was cut); `unreachable` when no upstream took
   * it (502); `abandoned` when the client went away first.
   */
  outcome: 'open' | 'complete' | 'cut' | 'unreachable' | 'abandoned';
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'transfer-encoding'];

export class RoundRobin {
  readonly url: string;
  /** Every request received, in arrival order. */
  readonly log: Exchange[] = [];
  /** The first upstream to try for a request; by default the next one in turn. */
  choose: (req: IncomingMessage) => number = () => this.#turn++ % this.upstreams.length;
  #turn = 0;
  readonly #events = new EventEmitter();
  readonly #sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly upstreams: readonly URL[],
  ) {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no proxy address');
    this.url = `http://127.0.0.1:${address.port}`;
    this.#events.setMaxListeners(100);
  }

  /** A proxy on a free 127.0.0.1 port over `upstreams` (http:// origins). */
  static async start(upstreams: readonly string[]): Promise<RoundRobin> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const proxy = new RoundRobin(
      server,
      upstreams.map((u) => new URL(u)),
    );
    server.on('connection', (s: Socket) => {
      proxy.#sockets.add(s);
      s.once('close', () => proxy.#sockets.delete(s));
    });
    server.on('request', (req, res) => proxy.#handle(req, res));
    return proxy;
  }

  /** Exchanges whose method is `method` and whose path contains `pathPart`. */
  requests(method: string, pathPart: string): Exchange[] {
    return this.log.filter((e) => e.method === method && e.path.includes(pathPart));
  }

  /** Resolves once `predicate` holds for the log (checked on every change), or rejects after `ms`. */
  waitFor(what: string, predicate: (log: Exchange[]) => boolean, ms = 30_000): Promise<void> {
    if (predicate(this.log)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this.log)) return;
        stop();
        resolve();
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`round robin: timed out waiting for ${what}`));
      }, ms);
      const stop = () => {
        clearTimeout(timer);
        this.#events.off('change', check);
      };
      this.#events.on('change', check);
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #changed(): void {
    this.#events.emit('change');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const exchange: Exchange = {
      n: this.log.length + 1,
      method: req.method ?? 'GET',
      path: url.split('?')[0] ?? url,
      range: req.headers.range,
      headers: req.headers,
      refused: [],
      responseBytes: 0,
      outcome: 'open',
    };
    this.log.push(exchange);
    const end = (outcome: Exchange['outcome']) => {
      if (exchange.outcome === 'open') exchange.outcome = outcome;
      this.#changed();
    };
    res.once('close', () => end(res.writableFinished ? 'complete' : 'abandoned'));
    this.#changed();
    const first = this.choose(req);
    for (let i = 0; i < this.upstreams.length; i++) {
      const index = (first + i) % this.upstreams.length;
      const socket = await this.#connect(index);
      if (socket === undefined) {
        exchange.refused.push(index);
        continue;
      }
      exchange.upstream = index;
      this.#forward(req, res, url, socket, exchange, end);
      return;
    }
    end('unreachable');
    const body = JSON.stringify({ error: 'no upstream reachable', code: 'ERR_BAD_GATEWAY' });
    res.writeHead(502, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  }

  /** A connection to upstream `index`, or undefined when it refuses one. */
  #connect(index: number): Promise<Socket | undefined> {
    const target = this.upstreams[index] as URL;
    return new Promise((resolve) => {
      const socket = connect(Number(target.port), target.hostname);
      socket.once('connect', () => resolve(socket));
      socket.once('error', () => resolve(undefined));
    });
  }

  /** Sends the request over `socket` and relays the answer, cutting the client if it breaks off. */
  #forward(
    req: IncomingMessage,
    res: ServerResponse,
    url: string,
    socket: Socket,
    exchange: Exchange,
    end: (outcome: Exchange['outcome']) => void,
  ): void {
    const headers: IncomingHttpHeaders = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    // One connection per request: a dead upstream never leaves a pooled socket behind.
    headers.connection = 'close';
    const up = request({
      method: exchange.method,
      path: url,
      headers,
      createConnection: () => socket,
    });
    const cut = () => {
      end('cut');
      res.socket?.resetAndDestroy();
    };
    req.pipe(up);
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.once('error', cut);
    up.once('response', (upRes) => {
      const answer: IncomingHttpHeaders = { ...upRes.headers };
      for (const h of HOP_BY_HOP) delete answer[h];
      exchange.status = upRes.statusCode ?? 502;
      const length = Number(upRes.headers['content-length']);
      if (Number.isSafeInteger(length)) exchange.length = length;
      res.writeHead(exchange.status, answer as Record<string, string | string[]>);
      this.#changed();
      upRes.on('data', (d: Buffer) => {
        exchange.responseBytes += d.length;
        if (!res.write(d)) {
          upRes.pause();
          res.once('drain', () => upRes.resume());
        }
        this.#changed();
      });
      upRes.once('end', () => res.end());
      // A premature close of the upstream's answer (its process died): the client's is cut too.
      upRes.once('aborted', cut);
      upRes.once('error', cut);
    });
  }
}
