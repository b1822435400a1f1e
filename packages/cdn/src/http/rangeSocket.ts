import { connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { describe, Transient } from '../engine/errors.js';

/**
 * A ranged GET over a kept-alive socket whose body is read by the kernel straight into the
 * caller's buffer (`onread` with a buffer function): no Buffer per read, no stream machinery, no
 * copy (`SLUICE_HTTP_RECEIVE=node|socket pnpm bench:pull --size 512MiB --reps 1` on a loaded
 * 2-core machine: client CPU of the pull 3.52 and 3.13 s over node:http, 2.36 and 2.34 s here).
 * HTTP/1.1 only, one request at a time per connection, bodies with a Content-Length only: a
 * chunked one is `Unsupported`, and the caller gets that range over node:http instead.
 */

/** A body this receiver does not read (chunked); the caller gets that range over node:http. */
export class Unsupported extends Error {}

/** The status line and headers of one response. */
export interface ResponseHead {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: ReadonlyMap<string, string>;
}

export interface SocketRequest {
  url: URL;
  headers: Record<string, string>;
  signal: AbortSignal;
  /** A request that receives nothing for this long is cut off (Transient). */
  idleTimeoutMs: number;
}

export interface SocketResponse extends ResponseHead {
  /** The body as exactly `length` bytes, into `into` when it has that length. */
  body(
    length: number,
    into: Buffer | undefined,
    tooLong: (length: number) => Error,
  ): Promise<Buffer>;
  /** Done with this response: its connection goes back to the pool when the body was read. */
  release(): void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const SCRATCH_BYTES = 64 * 1024;
/** Idle connections kept per origin. */
const MAX_IDLE_PER_ORIGIN = 16;
const HEAD_END = Buffer.from('\r\n\r\n');

type Phase = 'idle' | 'head' | 'headed' | 'body' | 'dead';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (e: unknown) => void;
}

class RangeConnection {
  readonly origin: string;
  readonly #socket: Socket;
  readonly #ready: Promise<void>;
  readonly #scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  #phase: Phase = 'idle';
  #head: Buffer[] = [];
  #headBytes = 0;
  /** Body bytes that came in the same read as the end of the head. */
  #early: Buffer | undefined;
  #dst: Buffer | undefined;
  #at = 0;
  #pending: Pending | undefined;
  #closeAfter = false;
  #failure: unknown;

  constructor(url: URL) {
    this.origin = url.origin;
    const onread = {
      buffer: () =>
        this.#phase === 'body' && this.#dst ? this.#dst.subarray(this.#at) : this.#scratch,
      callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf),
    };
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let connected: () => void = () => {};
    this.#ready = new Promise<void>((resolve) => {
      connected = resolve;
    });
    this.#socket =
      url.protocol === 'https:'
        ? // tls.connect takes `onread` as net.connect does (Node ≥ 15.1); @types/node omits it.
          tlsConnect(
            {
              host,
              port,
              servername: isIp(host) ? undefined : host,
              ALPNProtocols: ['http/1.1'],
              ...({ onread } as ConnectionOptions),
            },
            connected,
          )
        : netConnect({ host, port, onread, noDelay: true }, connected);
    this.#socket.on('error', (e) => this.#fail(e));
    this.#socket.on('close', () => this.#fail(new Error('connection closed')));
    this.#socket.on('end', () => this.#socket.destroy());
    this.#socket.on('timeout', () => {
      this.#socket.destroy(new Error(`nothing received for ${this.#socket.timeout} ms`));
    });
  }

  get usable(): boolean {
    return this.#phase === 'idle' && !this.#socket.destroyed && !this.#closeAfter;
  }

  async request(req: SocketRequest): Promise<ResponseHead> {
    const { signal } = req;
    const onAbort = () => this.#socket.destroy(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.#socket.ref();
      this.#socket.setTimeout(req.idleTimeoutMs);
      await Promise.race([this.#ready, this.#failed()]);
      this.#phase = 'head';
      const head = this.#wait<ResponseHead>();
      this.#socket.write(requestHead(req));
      this.#socket.resume();
      return await head;
    } catch (e) {
      if (signal.aborted) throw e;
      throw new Transient(describe(e), { cause: e });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async body(length: number, into: Buffer | undefined, signal: AbortSignal): Promise<Buffer> {
    let early = this.#early ?? Buffer.alloc(0);
    this.#early = undefined;
    if (early.length > length) {
      // Bytes beyond this response came with it: never read as the next one's.
      this.#closeAfter = true;
      early = early.subarray(0, length);
    }
    const dst = into !== undefined && into.length === length ? into : Buffer.allocUnsafe(length);
    early.copy(dst, 0);
    if (early.length === length) return this.#bodyDone(dst);
    const onAbort = () => this.#socket.destroy(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.#dst = dst;
      this.#at = early.length;
      this.#phase = 'body';
      const done = this.#wait<Buffer>();
      this.#socket.resume();
      return await done;
    } catch (e) {
      if (signal.aborted) throw e;
      throw new Transient(`body broke off after ${this.#at} of ${length} bytes: ${describe(e)}`, {
        cause: e,
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#dst = undefined;
    }
  }

  /** Back to the pool's idle state, or closed when the response was not read to its end. */
  finish(): boolean {
    if (this.#phase !== 'idle' || this.#closeAfter) {
      this.destroy();
      return false;
    }
    this.#socket.setTimeout(0);
    // An idle pooled connection never keeps the process alive (as node:http's agent does).
    this.#socket.unref();
    return !this.#socket.destroyed;
  }

  destroy(): void {
    this.#phase = 'dead';
    this.#socket.destroy();
  }

  #wait<T>(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending = { resolve: resolve as (v: unknown) => void, reject };
    });
  }

  #failed(): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (this.#phase === 'dead') reject(this.#failure);
      else this.#pending = { resolve: () => {}, reject };
    });
  }

  #settle(value: unknown): void {
    const p = this.#pending;
    this.#pending = undefined;
    p?.resolve(value);
  }

  #fail(e: unknown): void {
    if (this.#phase === 'dead' && this.#pending === undefined) return;
    this.#phase = 'dead';
    this.#failure ??= e;
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(e);
  }

  #bodyDone(dst: Buffer): Buffer {
    this.#phase = 'idle';
    return dst;
  }

  /** Returns false to pause the socket until the caller asks for the body. */
  #onRead(n: number, buf: Uint8Array): boolean {
    const dst = this.#dst;
    if (this.#phase === 'body' && dst !== undefined) {
      const direct = buf.buffer === dst.buffer && buf.byteOffset === dst.byteOffset + this.#at;
      if (!direct) {
        // Read into the scratch buffer (it was handed out while the socket was paused): copy.
        if (n > dst.length - this.#at) {
          this.#closeAfter = true;
          this.#socket.destroy(new Error('more body than its Content-Length'));
          return false;
        }
        dst.set(buf.subarray(0, n), this.#at);
      }
      this.#at += n;
      if (this.#at === dst.length) this.#settle(this.#bodyDone(dst));
      return true;
    }
    if (this.#phase !== 'head') {
      // Bytes nobody asked for: more body than its length said, or a reply to nothing.
      this.#closeAfter = true;
      this.#socket.destroy(new Error('unexpected bytes after the response'));
      return false;
    }
    return this.#onHeadBytes(Buffer.from(buf.subarray(0, n)));
  }

  #onHeadBytes(piece: Buffer): boolean {
    this.#head.push(piece);
    this.#headBytes += piece.length;
    const all = this.#head.length === 1 ? piece : Buffer.concat(this.#head);
    this.#head = [all];
    const end = all.indexOf(HEAD_END);
    if (end < 0) {
      if (this.#headBytes > MAX_HEAD_BYTES) {
        this.#socket.destroy(new Error(`response head longer than ${MAX_HEAD_BYTES} bytes`));
      }
      return true;
    }
    this.#head = [];
    this.#headBytes = 0;
    let head: ResponseHead & { length: number | undefined; close: boolean };
    try {
      head = parseHead(all.subarray(0, end).toString('latin1'));
    } catch (e) {
      this.#closeAfter = true;
      this.#socket.destroy(e as Error);
      return false;
    }
    this.#closeAfter = head.close;
    this.#early = all.subarray(end + HEAD_END.length);
    this.#phase = head.length === 0 ? 'idle' : 'headed';
    // A body this receiver cannot delimit (chunked): the head is still read, the connection is not
    // used again.
    if (head.length === undefined) this.#closeAfter = true;
    this.#settle(head);
    return false;
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function requestHead({ url, headers }: SocketRequest): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
      throw new TypeError(`header ${JSON.stringify(name)} holds a line break`);
    }
    lines.push(`${name}: ${value}`);
  }
  lines.push('connection: keep-alive');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Status line and headers; `length` undefined for a body this receiver cannot delimit. */
function parseHead(text: string): ResponseHead & { length: number | undefined; close: boolean } {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (m === null) throw new Error(`not an HTTP/1.1 status line: ${statusLine.slice(0, 80)}`);
  const status = Number(m[1]);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error('malformed response header');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  const close =
    /\bclose\b/i.test(headers.get('connection') ?? '') || statusLine.startsWith('HTTP/1.0');
  const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
  const declared = headers.get('content-length');
  let length: number | undefined;
  if (noBody) length = 0;
  else if (headers.has('transfer-encoding')) length = undefined;
  else if (declared !== undefined && /^\d{1,15}$/.test(declared)) length = Number(declared);
  else if (declared !== undefined) throw new Error(`bad Content-Length ${declared.slice(0, 40)}`);
  return { status, headers, length, close };
}

/** Idle kept-alive connections per origin. */
const idle = new Map<string, RangeConnection[]>();

function take(url: URL): RangeConnection {
  const list = idle.get(url.origin);
  while (list !== undefined && list.length > 0) {
    const c = list.pop();
    if (c?.usable) return c;
    c?.destroy();
  }
  return new RangeConnection(url);
}

function give(c: RangeConnection): void {
  if (!c.finish()) return;
  const list = idle.get(c.origin) ?? [];
  if (list.length >= MAX_IDLE_PER_ORIGIN) {
    c.destroy();
    return;
  }
  list.push(c);
  idle.set(c.origin, list);
}

/** One ranged GET: resolves with the head; the body is read with `body()`, then `release()`. */
export async function socketGet(req: SocketRequest): Promise<SocketResponse> {
  const conn = take(req.url);
  let head: ResponseHead;
  try {
    head = await conn.request(req);
  } catch (e) {
    conn.destroy();
    throw e;
  }
  let released = false;
  return {
    ...head,
    body: async (length, into, tooLong) => {
      if (head.headers.has('transfer-encoding') || !head.headers.has('content-length')) {
        conn.destroy();
        throw new Unsupported('a range body without Content-Length');
      }
      const declared = Number(head.headers.get('content-length'));
      if (declared > length) {
        conn.destroy();
        throw tooLong(length);
      }
      if (declared < length) {
        conn.destroy();
        throw new Transient(`short body: ${declared} of ${length} bytes`);
      }
      return conn.body(length, into, req.signal);
    },
    release: () => {
      if (released) return;
      released = true;
      give(conn);
    },
  };
}

/** Closes every idle connection (tests; a process that is done downloading). */
export function closeIdleSockets(): void {
  for (const list of idle.values()) for (const c of list) c.destroy();
  idle.clear();
}
