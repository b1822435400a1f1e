import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/**
 * Tracks the server's sockets and how many requests each has in flight, so a shutdown can close
 * every socket that carries no request at once and the others as soon as their last response
 * ends. Node's own `closeIdleConnections` misses sockets that never sent a request (HTTP clients
 * open spare ones, e.g. undici after an aborted transfer): Node counts them as active until its
 * keep-alive or headers timeout, which held `close()` for about 70 s.
 */
export class ConnectionDrainer {
  private readonly inFlight = new Map<Socket, number>();
  private draining = false;

  constructor(server: Server) {
    // Over HTTPS, requests arrive on the TLS socket of a connection, not on the TCP one.
    const connected = server instanceof TlsServer ? 'secureConnection' : 'connection';
    server.on(connected, (socket: Socket) => {
      if (this.draining) {
        socket.destroy();
        return;
      }
      this.inFlight.set(socket, 0);
      socket.once('close', () => this.inFlight.delete(socket));
    });
    server.on('request', (request, response) => {
      const socket = request.socket;
      this.inFlight.set(socket, (this.inFlight.get(socket) ?? 0) + 1);
      response.once('close', () => {
        const left = (this.inFlight.get(socket) ?? 1) - 1;
        this.inFlight.set(socket, left);
        if (this.draining && left === 0) endSocket(socket);
      });
    });
  }

  /** Requests still being answered. */
  get requestsInFlight(): number {
    let n = 0;
    for (const count of this.inFlight.values()) n += count;
    return n;
  }

  /**
   * From now on: refuse new sockets, end idle ones at once and busy ones when their last
   * response has been sent.
   */
  drain(): void {
    this.draining = true;
    for (const [socket, count] of this.inFlight) {
      if (count === 0) endSocket(socket);
    }
  }

  /** Destroys every socket, in flight or not (the end of the grace period). */
  destroyAll(): number {
    const busy = this.requestsInFlight;
    for (const socket of this.inFlight.keys()) socket.destroy();
    return busy;
  }
}

/** Sends FIN once what was written is flushed, then destroys the socket. */
function endSocket(socket: Socket): void {
  socket.destroySoon();
}
