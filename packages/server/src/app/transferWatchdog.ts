import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorBody } from '@sluice/protocol';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TransferTimeouts } from './transferTimeouts.js';

/** A request body being received. */
interface BodyWatch {
  kind: 'body';
  req: IncomingMessage;
  res: ServerResponse;
  socket: Socket;
  log: FastifyBaseLogger;
  startedAt: number;
  /** Start of the current rate window (undefined during the grace period) and bytes read then. */
  windowAt: number | undefined;
  windowBytes: number;
}

/** A response being sent. */
interface SendWatch {
  kind: 'send';
  res: ServerResponse;
  socket: Socket;
  log: FastifyBaseLogger;
  lastBytes: number;
  lastAt: number;
}

type Watch = BodyWatch | SendWatch;

/**
 * Cuts off clients that hold a connection without moving bytes: a request body arriving slower
 * than `bodyMinBytesPerSecond` after `bodyGraceMs` (answered 408 when nothing was sent yet, then
 * the connection is closed: the upload's temp files go with the aborted body), and a response
 * the client has not taken a byte of for `idleMs`. Windows in which the server itself is not
 * reading the body do not count. One timer for all watched transfers, running only while there
 * are some.
 */
export class TransferWatchdog {
  private readonly watched = new Set<Watch>();
  private ticker: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(private readonly t: TransferTimeouts) {
    const shortest = Math.min(t.bodyGraceMs, t.idleMs);
    this.tickMs = Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
  }

  /** Hooks the watchdog into `app`: bodies from onRequest, responses from onSend. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => this.watchBody(request, reply));
    app.addHook('onSend', async (request, reply, payload) => {
      this.watchSend(request, reply);
      return payload;
    });
    app.addHook('onClose', async () => this.stop());
  }

  stop(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.watched.clear();
  }

  private watchBody(request: FastifyRequest, reply: FastifyReply): void {
    const req = request.raw;
    const length = Number(req.headers['content-length'] ?? 0);
    const hasBody = req.headers['transfer-encoding'] !== undefined || length > 0;
    if (!hasBody || req.complete) return;
    const watch: BodyWatch = {
      kind: 'body',
      req,
      res: reply.raw,
      socket: req.socket,
      log: request.log,
      startedAt: Date.now(),
      windowAt: undefined,
      windowBytes: 0,
    };
    this.add(watch, req, ['end', 'close']);
  }

  private watchSend(request: FastifyRequest, reply: FastifyReply): void {
    const res = reply.raw;
    if (res.writableEnded || res.socket === null) return;
    const watch: SendWatch = {
      kind: 'send',
      res,
      socket: res.socket,
      log: request.log,
      lastBytes: res.socket.bytesWritten,
      lastAt: Date.now(),
    };
    this.add(watch, res, ['finish', 'close']);
  }

  /** Watches `watch` until `emitter` emits one of `events`. */
  private add(watch: Watch, emitter: NodeJS.EventEmitter, events: string[]): void {
    const done = () => {
      this.watched.delete(watch);
      for (const e of events) emitter.off(e, done);
      if (this.watched.size === 0) this.stop();
    };
    for (const e of events) emitter.once(e, done);
    this.watched.add(watch);
    if (this.ticker === undefined) {
      this.ticker = setInterval(() => this.tick(), this.tickMs);
      this.ticker.unref();
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const w of this.watched) {
      if (w.socket.destroyed) continue;
      if (w.kind === 'body' ? this.bodyTooSlow(w, now) : this.sendStalled(w, now)) {
        this.watched.delete(w);
        this.cutOff(w, now);
      }
    }
  }

  private bodyTooSlow(w: BodyWatch, now: number): boolean {
    const { bodyGraceMs, bodyMinBytesPerSecond } = this.t;
    if (now - w.startedAt < bodyGraceMs) return false;
    const bytes = w.socket.bytesRead;
    // Paused, or not read yet: the server is the slow side (storage, a token check), not the client.
    const serverWaits = w.req.readableFlowing !== true || w.req.readableLength > 0;
    if (w.windowAt === undefined || serverWaits) {
      w.windowAt = now;
      w.windowBytes = bytes;
      return false;
    }
    const elapsed = now - w.windowAt;
    if (elapsed < bodyGraceMs) return false;
    if ((bytes - w.windowBytes) * 1000 < bodyMinBytesPerSecond * elapsed) return true;
    w.windowAt = now;
    w.windowBytes = bytes;
    return false;
  }

  private sendStalled(w: SendWatch, now: number): boolean {
    const bytes = w.socket.bytesWritten;
    if (bytes !== w.lastBytes) {
      w.lastBytes = bytes;
      w.lastAt = now;
      return false;
    }
    return now - w.lastAt >= this.t.idleMs;
  }

  private cutOff(w: Watch, now: number): void {
    const { socket, res } = w;
    if (w.kind === 'send') {
      w.log.info(
        { event: 'response.stalled', idleMs: this.t.idleMs, sentBytes: socket.bytesWritten },
        'the client stopped reading the response: connection closed',
      );
      socket.destroy();
      return;
    }
    const rate = this.t.bodyMinBytesPerSecond;
    w.log.warn(
      {
        event: 'request.bodyTooSlow',
        receivedBytes: socket.bytesRead,
        ms: now - w.startedAt,
        rate,
      },
      'request body slower than the minimum rate: connection closed',
    );
    if (res.headersSent) {
      socket.destroy();
      return;
    }
    const body: ErrorBody = {
      error: `request body slower than ${rate} bytes/s`,
      code: 'ERR_REQUEST_TIMEOUT',
    };
    const text = JSON.stringify(body);
    res.writeHead(408, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      connection: 'close',
    });
    // The answer goes out first, unless the client does not even read it. The request stream is
    // destroyed too: once its response is finished Node no longer aborts it when the socket
    // closes, and the upload reading it would wait forever, its temp file with it.
    const close = () => {
      w.req.destroy();
      socket.destroy();
    };
    res.end(text, close);
    setTimeout(close, 1000).unref();
  }
}
